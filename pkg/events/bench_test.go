package events

import "testing"

func BenchmarkEncodeEnrichment(b *testing.B) {
	s := newSerde(b)
	e := sampleEnrichment()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.EncodeEnrichment(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEnrichment(b *testing.B) {
	s := newSerde(b)
	e := sampleEnrichment()
	buf, _ := s.EncodeEnrichment(&e)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DecodeEnrichment(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeVerdict(b *testing.B) {
	s := newSerde(b)
	v := sampleVerdict()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.EncodeVerdict(&v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeVerdict(b *testing.B) {
	s := newSerde(b)
	v := sampleVerdict()
	buf, _ := s.EncodeVerdict(&v)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DecodeVerdict(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeFeedback(b *testing.B) {
	s := newSerde(b)
	f := sampleFeedback()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.EncodeFeedback(&f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFeedback(b *testing.B) {
	s := newSerde(b)
	f := sampleFeedback()
	buf, _ := s.EncodeFeedback(&f)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DecodeFeedback(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDeadLetter(b *testing.B) {
	s := newSerde(b)
	d := sampleDeadLetter()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.EncodeDeadLetter(&d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDeadLetter(b *testing.B) {
	s := newSerde(b)
	d := sampleDeadLetter()
	buf, _ := s.EncodeDeadLetter(&d)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DecodeDeadLetter(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}
