package events

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"
)

// Hand-written Avro binary primitives for the fast path (fast.go). The encoding is the one
// goavro writes for the current schemas, byte for byte; the decoding accepts exactly what
// goavro's decoder accepts for them (see the differential tests), without building the
// intermediate map[string]any.

// appendLong appends v as a zig-zag varint (Avro long; an int is the same value sign-extended).
func appendLong(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

func appendInt(b []byte, v int32) []byte { return appendLong(b, int64(v)) }

func appendString(b []byte, s string) []byte {
	b = appendLong(b, int64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = appendLong(b, int64(len(p)))
	return append(b, p...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendDouble(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendOptString writes a ["null","string"] union: "" is null, as native.go maps it.
func appendOptString(b []byte, s string) []byte {
	if s == "" {
		return append(b, 0)
	}
	return appendString(append(b, 2), s) // 2 is union index 1 zig-zagged
}

// appendOptBytes writes a ["null","bytes"] union: nil is null, an empty slice is bytes.
func appendOptBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, 0)
	}
	return appendBytes(append(b, 2), p)
}

// appendTime writes a timestamp-millis long; the zero time is written as epoch 0.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	// same arithmetic as goavro (floor to the millisecond, also before 1970)
	return appendLong(b, t.Unix()*1e3+int64(t.Nanosecond()/1e6))
}

// appendStrings writes an array of strings as one block (none when empty), then the 0 end marker.
func appendStrings(b []byte, ss []string) []byte {
	if len(ss) > 0 {
		b = appendLong(b, int64(len(ss)))
		for _, s := range ss {
			b = appendString(b, s)
		}
	}
	return append(b, 0)
}

// bufPool holds scratch buffers; Encode* copies the result out into an exact-size slice.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// detach copies the encoded bytes out of the scratch buffer and returns the buffer to the pool.
func detach(bp *[]byte, b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return out
}

// reader decodes Avro binary. It keeps the first error; after one, every read returns a zero
// value and the position is at the end, so decoders need not check after each field.
type reader struct {
	b      []byte
	off    int
	detail string // first error, empty when none
}

func (r *reader) fail(format string, args ...any) {
	if r.detail == "" {
		r.detail = fmt.Sprintf("offset %d: ", r.off) + fmt.Sprintf(format, args...)
	}
	r.off = len(r.b)
}

func (r *reader) failed() bool { return r.detail != "" }

// done returns the typed error for a failed or not fully consumed decode.
func (r *reader) done(schema string) error {
	if r.detail == "" && r.off != len(r.b) {
		r.detail = fmt.Sprintf("%d trailing bytes", len(r.b)-r.off)
	}
	if r.detail != "" {
		return &DecodeError{Schema: schema, Err: ErrCorrupt, Detail: r.detail}
	}
	return nil
}

// varint reads an unsigned varint. Like goavro it accepts any length: bits past the 64th are
// dropped.
func (r *reader) varint() uint64 {
	if r.off < len(r.b) && r.b[r.off] < 0x80 {
		v := uint64(r.b[r.off])
		r.off++
		return v
	}
	var v uint64
	var shift uint
	for i := r.off; i < len(r.b); i++ {
		c := r.b[i]
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		if c < 0x80 {
			r.off = i + 1
			return v
		}
		shift += 7
	}
	r.fail("varint runs past the end")
	return 0
}

func (r *reader) long() int64 {
	u := r.varint()
	return int64(u>>1) ^ -int64(u&1)
}

// int reads an Avro int; like goavro, the low 32 bits of an over-long value are kept.
func (r *reader) int() int32 {
	u := r.varint()
	return int32(uint32(u>>1)) ^ -int32(u&1)
}

func (r *reader) boolean() bool {
	if r.off >= len(r.b) {
		r.fail("boolean past the end")
		return false
	}
	c := r.b[r.off]
	r.off++
	switch c {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail("boolean byte %d", c)
	return false
}

func (r *reader) double() float64 {
	if len(r.b)-r.off < 8 {
		r.fail("double past the end")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.off:]))
	r.off += 8
	return f
}

// raw reads a length-prefixed byte string and returns a slice of the input (not a copy).
func (r *reader) raw() []byte {
	n := r.long()
	if n < 0 {
		r.fail("negative length %d", n)
		return nil
	}
	if n > int64(len(r.b)-r.off) {
		r.fail("length %d exceeds the %d remaining bytes", n, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return p
}

func (r *reader) str() string { return string(r.raw()) }

// bytes reads Avro bytes into a new slice (never nil, possibly empty).
func (r *reader) bytes() []byte {
	p := r.raw()
	if r.failed() {
		return nil
	}
	out := make([]byte, len(p))
	copy(out, p)
	return out
}

// sym reads a string that is usually one of the package's constants and returns the constant
// without allocating when it is.
func (r *reader) sym() string {
	p := r.raw()
	switch string(p) {
	case "":
		return ""
	case TypeIPv4:
		return TypeIPv4
	case TypeIPv6:
		return TypeIPv6
	case TypeDomain:
		return TypeDomain
	case TypeURL:
		return TypeURL
	case TypeMD5:
		return TypeMD5
	case TypeSHA1:
		return TypeSHA1
	case TypeSHA256:
		return TypeSHA256
	case DirectionInbound:
		return DirectionInbound
	case DirectionOutbound:
		return DirectionOutbound
	case DirectionInternal:
		return DirectionInternal
	case DirectionUnknown: // also ActionUnknown
		return DirectionUnknown
	case ActionAllowed:
		return ActionAllowed
	case ActionBlocked:
		return ActionBlocked
	case ActionAlerted:
		return ActionAlerted
	case StatusOK:
		return StatusOK
	case StatusNotFound:
		return StatusNotFound
	case StatusError:
		return StatusError
	case StatusSkipped:
		return StatusSkipped
	case StatusBreakerOpen:
		return StatusBreakerOpen
	case StatusRateLimited:
		return StatusRateLimited
	case VerdictBlock:
		return VerdictBlock
	case VerdictAlert:
		return VerdictAlert
	case VerdictAnnotate:
		return VerdictAnnotate
	case VerdictReview:
		return VerdictReview
	case VerdictSuppress:
		return VerdictSuppress
	case "tcp":
		return "tcp"
	case "udp":
		return "udp"
	case "icmp":
		return "icmp"
	case "none":
		return "none"
	case "low":
		return "low"
	case "medium":
		return "medium"
	case "high":
		return "high"
	case "critical":
		return "critical"
	}
	return string(p)
}

// union reads a union branch index in [0, n).
func (r *reader) union(n int64) int64 {
	i := r.long()
	if i < 0 || i >= n {
		r.fail("union index %d out of range", i)
		return 0
	}
	return i
}

// optStr reads a ["null","string"] union; null is "".
func (r *reader) optStr() string {
	if r.union(2) == 1 {
		return r.str()
	}
	return ""
}

// optBytes reads a ["null","bytes"] union; null is nil.
func (r *reader) optBytes() []byte {
	if r.union(2) == 1 {
		return r.bytes()
	}
	return nil
}

// time reads a timestamp-millis long; epoch 0 is the zero time, anything else is UTC.
func (r *reader) time() time.Time {
	ms := r.long()
	if ms == 0 {
		return time.Time{}
	}
	// same arithmetic as goavro followed by native.go's fromTS
	sec := ms / 1e3
	t := time.Unix(sec, (ms-sec*1e3)*1e6).UTC()
	if t.UnixMilli() == 0 {
		return time.Time{}
	}
	return t
}

// block reads the item count of the next array or map block: 0 ends it. A negative count is
// followed by the block's byte size, which is skipped. Every item of the current schemas takes
// at least one byte, so a count above the remaining input is corrupt; this bounds allocations.
func (r *reader) block() int {
	n := r.long()
	if n < 0 {
		if n == math.MinInt64 {
			r.fail("block count %d", n)
			return 0
		}
		n = -n
		_ = r.long() // byte size of the block
	}
	if n > int64(len(r.b)-r.off) {
		r.fail("block count %d exceeds the %d remaining bytes", n, len(r.b)-r.off)
		return 0
	}
	return int(n)
}

// strs reads an array of strings; none is nil, as native.go's fromStrs.
func (r *reader) strs() []string {
	var out []string
	for n := r.block(); n > 0; n = r.block() {
		if out == nil {
			out = make([]string, 0, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			out = append(out, r.str())
		}
	}
	return out
}

// strMap reads a map of strings; empty is nil and a repeated key is corrupt, as in goavro.
func (r *reader) strMap() map[string]string {
	var m map[string]string
	for n := r.block(); n > 0; n = r.block() {
		if m == nil {
			m = make(map[string]string, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			k := r.str()
			if _, dup := m[k]; dup {
				r.fail("duplicate map key %q", k)
				break
			}
			m[k] = r.str()
		}
	}
	return m
}

// skipOptStr skips a ["null","string"] union.
func (r *reader) skipOptStr() {
	if r.union(2) == 1 {
		r.raw()
	}
}
