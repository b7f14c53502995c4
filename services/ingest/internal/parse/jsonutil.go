package parse

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the small JSON reader shared by the JSON parsers. It walks a record once,
// without reflection, and hands every member to a visitor together with its dotted path
// ("dns.answers.rdata"), so nested ({"source":{"ip":…}}) and flattened ({"source.ip":…})
// spellings read the same. The walker validates the whole record: a truncated or otherwise
// broken record is an error even when the fields a parser needs came before the damage.

// JSON value kinds seen by a visitor.
const (
	jsonString    byte = 's'
	jsonNumber    byte = 'n'
	jsonBool      byte = 'b'
	jsonNull      byte = 'z'
	jsonObject    byte = 'o' // start of an object; the visitor's answer says whether to descend
	jsonArray     byte = 'a' // start of an array; elements are visited with the array's path
	jsonObjectEnd byte = 'e' // end of an object that was descended into
)

// jsonMaxDepth bounds nesting so hostile input cannot exhaust the stack.
const jsonMaxDepth = 64

// jsonValue is one value met during a walk. Raw is the string content between the quotes
// (still escaped when Esc is set) or the literal text of a number, true, false or null. It is
// empty for containers. Raw aliases the record: copy before keeping it.
type jsonValue struct {
	Kind byte
	Esc  bool
	Raw  []byte
}

// jsonVisitor is called for every member and array element. Its result only matters for
// containers: true descends into the object or array, false skips it (still validated).
type jsonVisitor func(path []byte, v jsonValue) bool

type jsonSyntaxError struct {
	off int
	msg string
}

func (e *jsonSyntaxError) Error() string { return e.msg + " at offset " + strconv.Itoa(e.off) }

type jsonWalker struct {
	data  []byte
	pos   int
	depth int
	path  []byte
	fn    jsonVisitor
}

// walkJSON walks one JSON object (the whole of data, surrounding white space allowed) and
// calls fn for its members. It returns a *jsonSyntaxError for anything that is not exactly
// one well-formed object. It does not check UTF-8; callers do that first (checkJSONRecord).
func walkJSON(data []byte, fn jsonVisitor) error {
	var buf [128]byte
	w := jsonWalker{data: data, fn: fn, path: buf[:0]}
	w.ws()
	if w.pos >= len(w.data) {
		return w.fail("empty record")
	}
	if w.data[w.pos] != '{' {
		return w.fail("record is not a JSON object")
	}
	if err := w.object(); err != nil {
		return err
	}
	w.ws()
	if w.pos != len(w.data) {
		return w.fail("data after the JSON object")
	}
	return nil
}

func (w *jsonWalker) fail(msg string) error { return &jsonSyntaxError{off: w.pos, msg: msg} }

func (w *jsonWalker) ws() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// object reads an object whose '{' is at w.pos; members get paths below the current path.
func (w *jsonWalker) object() error {
	w.depth++
	if w.depth > jsonMaxDepth {
		return w.fail("nesting too deep")
	}
	w.pos++
	base := len(w.path)
	w.ws()
	if w.pos < len(w.data) && w.data[w.pos] == '}' {
		w.pos++
		w.depth--
		return nil
	}
	for {
		w.ws()
		if w.pos >= len(w.data) || w.data[w.pos] != '"' {
			return w.fail("expected object key")
		}
		key, esc, err := w.str()
		if err != nil {
			return err
		}
		w.path = w.path[:base]
		if base > 0 {
			w.path = append(w.path, '.')
		}
		if esc {
			w.path = appendUnescaped(w.path, key)
		} else {
			w.path = append(w.path, key...)
		}
		w.ws()
		if w.pos >= len(w.data) || w.data[w.pos] != ':' {
			return w.fail("expected ':'")
		}
		w.pos++
		w.ws()
		if err := w.member(); err != nil {
			return err
		}
		w.ws()
		if w.pos >= len(w.data) {
			return w.fail("unterminated object")
		}
		c := w.data[w.pos]
		w.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			w.pos--
			return w.fail("expected ',' or '}'")
		}
	}
	w.path = w.path[:base]
	w.depth--
	return nil
}

// member reads the value at w.pos, reports it under w.path and descends when asked.
func (w *jsonWalker) member() error {
	if w.pos >= len(w.data) {
		return w.fail("missing value")
	}
	switch c := w.data[w.pos]; c {
	case '{':
		if !w.fn(w.path, jsonValue{Kind: jsonObject}) {
			return w.skip()
		}
		if err := w.object(); err != nil {
			return err
		}
		w.fn(w.path, jsonValue{Kind: jsonObjectEnd})
		return nil
	case '[':
		if !w.fn(w.path, jsonValue{Kind: jsonArray}) {
			return w.skip()
		}
		return w.array()
	case '"':
		s, esc, err := w.str()
		if err != nil {
			return err
		}
		w.fn(w.path, jsonValue{Kind: jsonString, Esc: esc, Raw: s})
		return nil
	default:
		kind, lit, err := w.scalar()
		if err != nil {
			return err
		}
		w.fn(w.path, jsonValue{Kind: kind, Raw: lit})
		return nil
	}
}

func (w *jsonWalker) array() error {
	w.depth++
	if w.depth > jsonMaxDepth {
		return w.fail("nesting too deep")
	}
	w.pos++
	w.ws()
	if w.pos < len(w.data) && w.data[w.pos] == ']' {
		w.pos++
		w.depth--
		return nil
	}
	for {
		w.ws()
		if err := w.member(); err != nil {
			return err
		}
		w.ws()
		if w.pos >= len(w.data) {
			return w.fail("unterminated array")
		}
		c := w.data[w.pos]
		w.pos++
		if c == ']' {
			break
		}
		if c != ',' {
			w.pos--
			return w.fail("expected ',' or ']'")
		}
	}
	w.depth--
	return nil
}

// skip validates and passes over the value at w.pos without reporting anything.
func (w *jsonWalker) skip() error {
	if w.pos >= len(w.data) {
		return w.fail("missing value")
	}
	switch w.data[w.pos] {
	case '{':
		w.depth++
		if w.depth > jsonMaxDepth {
			return w.fail("nesting too deep")
		}
		w.pos++
		w.ws()
		if w.pos < len(w.data) && w.data[w.pos] == '}' {
			w.pos++
			w.depth--
			return nil
		}
		for {
			w.ws()
			if w.pos >= len(w.data) || w.data[w.pos] != '"' {
				return w.fail("expected object key")
			}
			if _, _, err := w.str(); err != nil {
				return err
			}
			w.ws()
			if w.pos >= len(w.data) || w.data[w.pos] != ':' {
				return w.fail("expected ':'")
			}
			w.pos++
			w.ws()
			if err := w.skip(); err != nil {
				return err
			}
			w.ws()
			if w.pos >= len(w.data) {
				return w.fail("unterminated object")
			}
			c := w.data[w.pos]
			w.pos++
			if c == '}' {
				w.depth--
				return nil
			}
			if c != ',' {
				w.pos--
				return w.fail("expected ',' or '}'")
			}
		}
	case '[':
		w.depth++
		if w.depth > jsonMaxDepth {
			return w.fail("nesting too deep")
		}
		w.pos++
		w.ws()
		if w.pos < len(w.data) && w.data[w.pos] == ']' {
			w.pos++
			w.depth--
			return nil
		}
		for {
			w.ws()
			if err := w.skip(); err != nil {
				return err
			}
			w.ws()
			if w.pos >= len(w.data) {
				return w.fail("unterminated array")
			}
			c := w.data[w.pos]
			w.pos++
			if c == ']' {
				w.depth--
				return nil
			}
			if c != ',' {
				w.pos--
				return w.fail("expected ',' or ']'")
			}
		}
	case '"':
		_, _, err := w.str()
		return err
	default:
		_, _, err := w.scalar()
		return err
	}
}

// str reads a string whose opening quote is at w.pos and returns its raw content.
func (w *jsonWalker) str() (raw []byte, esc bool, err error) {
	start := w.pos + 1
	i := start
	d := w.data
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			w.pos = i + 1
			return d[start:i], esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(d) {
				w.pos = i
				return nil, false, w.fail("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					w.pos = i
					return nil, false, w.fail("bad \\u escape")
				}
				i += 6
			default:
				w.pos = i
				return nil, false, w.fail("bad escape")
			}
		case c < 0x20:
			w.pos = i
			return nil, false, w.fail("control character in string")
		default:
			i++
		}
	}
	w.pos = len(d)
	return nil, false, w.fail("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// scalar reads a number, true, false or null at w.pos.
func (w *jsonWalker) scalar() (byte, []byte, error) {
	d := w.data
	start := w.pos
	switch d[start] {
	case 't':
		if bytes.HasPrefix(d[start:], []byte("true")) {
			w.pos += 4
			return jsonBool, d[start:w.pos], nil
		}
	case 'f':
		if bytes.HasPrefix(d[start:], []byte("false")) {
			w.pos += 5
			return jsonBool, d[start:w.pos], nil
		}
	case 'n':
		if bytes.HasPrefix(d[start:], []byte("null")) {
			w.pos += 4
			return jsonNull, d[start:w.pos], nil
		}
	default:
		if end, ok := scanNumber(d, start); ok {
			w.pos = end
			return jsonNumber, d[start:end], nil
		}
	}
	return 0, nil, w.fail("invalid value")
}

// scanNumber checks the JSON number grammar from i and returns the end offset.
func scanNumber(d []byte, i int) (int, bool) {
	if i < len(d) && d[i] == '-' {
		i++
	}
	if i >= len(d) {
		return i, false
	}
	switch {
	case d[i] == '0':
		i++
	case '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		n := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		if i == n {
			return i, false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		n := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		if i == n {
			return i, false
		}
	}
	return i, true
}

// appendUnescaped appends the decoded form of an escaped JSON string body. The body was
// validated by the walker; broken surrogate pairs decode to U+FFFD.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return dst
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+6 > len(s) {
				return dst
			}
			r := rune(hex4(s[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(utf8.RuneError)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' && isHex4(s[i+2:i+6]) {
					r2 = rune(hex4(s[i+2 : i+6]))
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) int {
	n := 0
	for _, c := range b {
		n <<= 4
		switch {
		case '0' <= c && c <= '9':
			n |= int(c - '0')
		case 'a' <= c && c <= 'f':
			n |= int(c-'a') + 10
		case 'A' <= c && c <= 'F':
			n |= int(c-'A') + 10
		}
	}
	return n
}

// text returns a string or scalar value as text (numbers and booleans as written); null and
// containers give "".
func (v jsonValue) text() string {
	switch v.Kind {
	case jsonString:
		if v.Esc {
			return string(appendUnescaped(make([]byte, 0, len(v.Raw)), v.Raw))
		}
		return string(v.Raw)
	case jsonNumber, jsonBool:
		return string(v.Raw)
	}
	return ""
}

// isScalar reports whether v is a string, number or boolean (not null, not a container).
func (v jsonValue) isScalar() bool {
	return v.Kind == jsonString || v.Kind == jsonNumber || v.Kind == jsonBool
}

// jsonRecord collects the first type error met while a parser maps fields, so that a
// wrongly typed field makes the record malformed instead of silently wrong.
type jsonRecord struct {
	format string
	bad    string
}

func (r *jsonRecord) typeErr(path []byte, want string) {
	if r.bad == "" {
		r.bad = "field " + string(path) + ": want " + want
	}
}

// str reads a field that should be text. Null gives ""; numbers and booleans are accepted as
// written; containers are a type error.
func (r *jsonRecord) str(path []byte, v jsonValue) string {
	switch v.Kind {
	case jsonString, jsonNumber, jsonBool:
		return v.text()
	case jsonNull:
		return ""
	}
	r.typeErr(path, "string")
	return ""
}

// port reads a port given as a number or a numeric string; "", "-" and null mean absent.
func (r *jsonRecord) port(path []byte, v jsonValue) int {
	var b []byte
	switch v.Kind {
	case jsonNumber, jsonString:
		b = v.Raw
	case jsonNull:
		return 0
	default:
		r.typeErr(path, "port number")
		return 0
	}
	if len(b) == 0 || (len(b) == 1 && b[0] == '-') {
		return 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			r.typeErr(path, "port number")
			return 0
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			r.typeErr(path, "port number")
			return 0
		}
	}
	return n
}

// integer reads a small integer given as a number or a numeric string; ok is false when
// absent. Fractions and exponents are a type error.
func (r *jsonRecord) integer(path []byte, v jsonValue) (int, bool) {
	var b []byte
	switch v.Kind {
	case jsonNumber, jsonString:
		b = v.Raw
	case jsonNull:
		return 0, false
	default:
		r.typeErr(path, "integer")
		return 0, false
	}
	if len(b) == 0 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		r.typeErr(path, "integer")
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			r.typeErr(path, "integer")
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// time reads a timestamp: epoch seconds/milliseconds/microseconds/nanoseconds as a number or
// numeric string, or an ISO 8601 / RFC 3339 text. Unreadable text gives the zero time (the
// record is still usable); a container is a type error.
func (r *jsonRecord) time(path []byte, v jsonValue) time.Time {
	switch v.Kind {
	case jsonNumber:
		t, _ := parseEpoch(v.Raw)
		return t
	case jsonString:
		if v.Esc {
			return parseTimeText(appendUnescaped(nil, v.Raw))
		}
		return parseTimeText(v.Raw)
	case jsonNull:
		return time.Time{}
	}
	r.typeErr(path, "timestamp")
	return time.Time{}
}

func (r *jsonRecord) malformed() error {
	return &Error{Format: r.format, Reason: ReasonMalformed, Detail: r.bad}
}

// checkJSONRecord rejects input that cannot be a JSON record before any field is read.
func checkJSONRecord(format string, raw []byte) error {
	if !utf8.Valid(raw) {
		return &Error{Format: format, Reason: ReasonInvalidUTF8, Detail: "record is not valid UTF-8"}
	}
	return nil
}

// walkRecord validates raw and walks it, turning syntax errors into *Error values.
func walkRecord(format string, raw []byte, fn jsonVisitor) error {
	if err := checkJSONRecord(format, raw); err != nil {
		return err
	}
	if err := walkJSON(raw, fn); err != nil {
		return &Error{Format: format, Reason: ReasonMalformed, Detail: err.Error()}
	}
	return nil
}

func unsupported(format, detail string) error {
	return &Error{Format: format, Reason: ReasonUnsupported, Detail: detail}
}

// parseEpoch reads a decimal epoch number (optionally with a fraction) whose unit is guessed
// from its magnitude: seconds, milliseconds, microseconds or nanoseconds.
func parseEpoch(b []byte) (time.Time, bool) {
	if len(b) == 0 || len(b) > 40 {
		return time.Time{}, false
	}
	var ip, frac int64
	fracDigits := 0
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if ip > (1<<62)/10 {
			return time.Time{}, false
		}
		ip = ip*10 + int64(b[i]-'0')
	}
	if i == 0 {
		return time.Time{}, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if fracDigits < 9 {
				frac = frac*10 + int64(b[i]-'0')
				fracDigits++
			}
		}
	}
	if i != len(b) {
		return time.Time{}, false
	}
	for ; fracDigits < 9; fracDigits++ {
		frac *= 10
	}
	switch {
	case ip >= 1e17: // nanoseconds
		return time.Unix(0, ip).UTC(), true
	case ip >= 9e15: // too large for microseconds, too small for nanoseconds
		return time.Time{}, false
	case ip >= 1e14: // microseconds
		return time.Unix(0, ip*1e3+frac/1e6).UTC(), true
	case ip >= 9e12: // beyond year 2255 in milliseconds
		return time.Time{}, false
	case ip >= 1e11: // milliseconds
		return time.Unix(0, ip*1e6+frac/1e3).UTC(), true
	default:
		return time.Unix(ip, frac).UTC(), true
	}
}

// parseTimeText reads "YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm| UTC]" without
// allocating; a missing zone means UTC. Plain epoch numbers in text are accepted too.
// Anything else gives the zero time.
func parseTimeText(b []byte) time.Time {
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' && (len(b) < 5 || b[4] != '-') {
		t, _ := parseEpoch(b)
		return t
	}
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}
	}
	i := 19
	nsec := 0
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		i++
		n := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if n < 9 {
				nsec = nsec*10 + int(b[i]-'0')
				n++
			}
		}
		if n == 0 {
			return time.Time{}
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	offset := 0
	rest := b[i:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	switch {
	case len(rest) == 0, string(rest) == "Z", string(rest) == "z", string(rest) == "UTC", string(rest) == "GMT":
	case rest[0] == '+' || rest[0] == '-':
		var hh, mm int
		var ok bool
		switch len(rest) {
		case 3: // +hh
			hh, ok = digits(rest[1:3])
		case 5: // +hhmm
			hh, ok = digits(rest[1:3])
			if ok {
				mm, ok = digits(rest[3:5])
			}
		case 6: // +hh:mm
			if rest[3] == ':' {
				hh, ok = digits(rest[1:3])
				if ok {
					mm, ok = digits(rest[4:6])
				}
			}
		}
		if !ok || hh > 23 || mm > 59 {
			return time.Time{}
		}
		offset = hh*3600 + mm*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	return t
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// hasJSONKey reports whether raw contains the member name key ("key" followed by optional
// white space and a colon). It is a cheap text test for Detect, not a parse: a key that only
// appears inside an escaped string does not match because its quotes are escaped.
func hasJSONKey(raw []byte, key string) bool {
	for off := 0; off < len(raw); {
		i := bytes.Index(raw[off:], []byte(key))
		if i < 0 {
			return false
		}
		start := off + i
		end := start + len(key)
		off = start + 1
		if start == 0 || raw[start-1] != '"' || end >= len(raw) || raw[end] != '"' {
			continue
		}
		if start >= 2 && raw[start-2] == '\\' {
			continue
		}
		j := end + 1
		for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
			j++
		}
		if j < len(raw) && raw[j] == ':' {
			return true
		}
	}
	return false
}

// looksLikeJSONObject reports whether raw starts with '{' after white space.
func looksLikeJSONObject(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// observables collects indicator candidates without duplicates.
type observables []Observable

func (o *observables) add(kind, value, field string) {
	if value == "" || value == "-" {
		return
	}
	for _, x := range *o {
		if x.Value == value && x.Kind == kind {
			return
		}
	}
	*o = append(*o, Observable{Kind: kind, Value: value, Field: field})
}

// addHash adds a hash observable, typed by length when kind is "hash", ignoring all-zero
// placeholders and values that are not hex.
func (o *observables) addHash(kind, value, field string) {
	if len(value) < 32 {
		return
	}
	zero := true
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return
		}
		if c != '0' {
			zero = false
		}
	}
	if zero {
		return
	}
	if kind == "hash" {
		switch len(value) {
		case 32:
			kind = "md5"
		case 40:
			kind = "sha1"
		case 64:
			kind = "sha256"
		}
	}
	o.add(kind, value, field)
}

// addHost adds a host name or address as an "ip" or "domain" observable, whichever it is.
func (o *observables) addHost(value, field string) {
	value = strings.TrimSpace(value)
	if value == "" || value == "-" {
		return
	}
	if isIPText(value) {
		o.add("ip", value, field)
		return
	}
	o.add("domain", value, field)
}

// isIPText reports whether s is an IPv4 or IPv6 address (zones allowed).
func isIPText(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	c := s[0]
	if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':') {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// protocolName lower-cases a transport protocol and turns IANA numbers into names. Common
// values come back as constants so no allocation happens.
func protocolName(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "TCP", "tcp", "Tcp", "6":
		return "tcp"
	case "UDP", "udp", "Udp", "17":
		return "udp"
	case "ICMP", "icmp", "Icmp", "1":
		return "icmp"
	case "IPv6-ICMP", "ICMPv6", "icmpv6", "ipv6-icmp", "IPV6-ICMP", "58":
		return "ipv6-icmp"
	case "SCTP", "sctp", "132":
		return "sctp"
	case "GRE", "gre", "47":
		return "gre"
	case "ESP", "esp", "50":
		return "esp"
	case "-", "0":
		return ""
	}
	return strings.ToLower(string(b))
}

// protocol reads a protocol field (name or IANA number).
func (r *jsonRecord) protocol(path []byte, v jsonValue) string {
	if v.Kind == jsonString && !v.Esc || v.Kind == jsonNumber {
		return protocolName(v.Raw)
	}
	return protocolName([]byte(r.str(path, v)))
}

// severityWord maps a vendor severity word onto the Event scale
// (0 unknown/info, 1 low, 2 medium, 3 high, 4 critical).
func severityWord(s string) int {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low", "minor":
		return 1
	case "medium", "moderate", "warning":
		return 2
	case "high", "major", "severe", "error":
		return 3
	case "critical", "very-high", "veryhigh", "fatal", "emergency":
		return 4
	}
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }

// lastSegment returns the part of a dotted path after its last dot.
func lastSegment(path []byte) []byte {
	if i := bytes.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// addHashList adds the hashes of a "ALG=value,ALG=value" list (Sysmon Hashes) and ignores
// algorithms that are not file hashes (IMPHASH).
func (o *observables) addHashList(list, field string) {
	for list != "" {
		var item string
		item, list, _ = strings.Cut(list, ",")
		alg, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			o.addHash("hash", alg, field)
			continue
		}
		switch strings.ToUpper(alg) {
		case "MD5":
			o.addHash("md5", val, field+".MD5")
		case "SHA1":
			o.addHash("sha1", val, field+".SHA1")
		case "SHA256":
			o.addHash("sha256", val, field+".SHA256")
		}
	}
}

// addList adds every entry of a sep-separated list as an observable of one kind.
func (o *observables) addList(kind, list string, sep byte, field string) {
	for list != "" {
		var item string
		if i := strings.IndexByte(list, sep); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, ""
		}
		o.add(kind, strings.TrimSpace(item), field)
	}
}

// isECSDocument reports whether raw carries the ECS version member; the vendor parsers leave
// such documents to the ECS parser even when they hold a vendor's fields.
func isECSDocument(raw []byte) bool {
	return hasJSONKey(raw, "ecs") || hasJSONKey(raw, "ecs.version")
}

// vendorJSON reports whether raw is a JSON object that is not an ECS document, the common
// first test of the vendor formats' Detect.
func vendorJSON(raw []byte) bool {
	return looksLikeJSONObject(raw) && !isECSDocument(raw)
}
