package tqemu

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	segjson "github.com/segmentio/encoding/json"
)

// Default development credentials.
const (
	DefaultClientID     = "vigil-dev"
	DefaultClientSecret = "vigil-dev-secret"
	DefaultEmail        = "analyst@vigil.local"
	DefaultPassword     = "vigil-dev"
)

// maxBody bounds a request body.
const maxBody = 64 << 20

// Options configures a Server. The zero value is usable: every empty field
// takes the documented default.
type Options struct {
	// ClientID, ClientSecret, Email and Password are the accepted
	// credentials (default vigil-dev / vigil-dev-secret /
	// analyst@vigil.local / vigil-dev).
	ClientID     string
	ClientSecret string
	Email        string
	Password     string
	// TokenTTL is the access token lifetime, reported as expires_in
	// (default 3600s, the value the spec's mocks show).
	TokenTTL time.Duration
	// RefreshTTL is the refresh token lifetime (default 24h) [I].
	RefreshTTL time.Duration
	// Seed makes type/status/indicator ids reproducible; 0 picks a random seed.
	Seed uint64
	// Now is the clock (default time.Now). Tests advance it to expire tokens.
	Now func() time.Time
	// Logger receives one debug line per request (default: discard).
	Logger *slog.Logger
	// ScorePolicy computes generated_score (0–10) after every change. The
	// real server runs its scoring policy here [I]; the default returns 0.
	ScorePolicy func(Indicator) float64
	// DefaultStatus is given to new indicators that name no status
	// (default "Review"; an unknown name falls back to it) [I].
	DefaultStatus string
	// DefaultLimit is the page size when a list request sends no limit
	// (default 100) [I].
	DefaultLimit int
}

func (o *Options) setDefaults() {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.Email == "" {
		o.Email = DefaultEmail
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 24 * time.Hour
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ScorePolicy == nil {
		o.ScorePolicy = func(Indicator) float64 { return 0 }
	}
	if o.DefaultStatus == "" {
		o.DefaultStatus = "Review"
	}
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 100
	}
}

// Server is the emulator. It implements http.Handler and is safe for
// concurrent use; one mutex guards all state except the call and response
// counters, which have their own (handlers answer while holding mu).
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	mu      sync.Mutex
	rng     *rand.Rand
	st      *state
	tokens  map[string]time.Time // access token → expiry
	refresh map[string]time.Time // refresh token → expiry
	faults  Faults
	stats   Stats // Created, Updated, TokensIssued, FaultsInjected (under mu)

	countMu      sync.Mutex // after mu when both are held
	calls        map[string]int
	responses    map[int]int
	scoreCfgHash string
	// constScore is set when no ScorePolicy was given: every generated score is 0, so a change
	// needs no view of the indicator to rescore it.
	constScore bool
}

// New returns an emulator with fresh state.
func New(opts Options) *Server {
	constScore := opts.ScorePolicy == nil
	opts.setDefaults()
	s := &Server{
		constScore:   constScore,
		opts:         opts,
		log:          opts.Logger,
		mux:          http.NewServeMux(),
		rng:          rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		tokens:       map[string]time.Time{},
		refresh:      map[string]time.Time{},
		scoreCfgHash: "e3b0c44298fc1c149afbf4c8996fb924",
	}
	s.st = newState(s.rng, s.now())
	if _, ok := s.st.statusByName(s.opts.DefaultStatus); !ok {
		s.opts.DefaultStatus = "Review"
	}
	s.stats = Stats{}
	s.calls, s.responses = map[string]int{}, map[int]int{}
	s.routes()
	return s
}

// Options returns the effective options (defaults filled in).
func (s *Server) Options() Options { return s.opts }

func (s *Server) now() time.Time { return s.opts.Now().UTC().Truncate(time.Second) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	// Token endpoint: faults apply, auth does not.
	s.handle("POST /api/token", false, s.handleToken)

	s.handle("GET /api/indicator/types", true, s.handleListTypes)
	s.handle("GET /api/indicator/types/{id}", true, s.handleGetType)
	s.handle("GET /api/indicator/statuses", true, s.handleListStatuses)
	s.handle("GET /api/indicator/statuses/{id}", true, s.handleGetStatus)
	s.handle("PUT /api/indicator/{id}/scores", true, s.handlePutScores)

	s.handle("POST /api/indicators", true, s.handleCreate)
	s.handle("POST /api/indicators/consume", true, s.handleConsume)
	s.handle("POST /api/indicators/consume/new", true, s.handleConsume)
	s.handle("GET /api/indicators", true, s.handleList)
	s.handle("POST /api/indicators/query", true, s.handleQuery)
	s.handle("GET /api/indicators/{id}", true, s.handleGet)
	s.handle("PUT /api/indicators/{id}", true, s.handlePut)
	s.handle("DELETE /api/indicators/{id}", true, s.handleDelete)

	s.handle("GET /api/indicators/{id}/attributes", true, s.handleListAttributes)
	s.handle("POST /api/indicators/{id}/attributes", true, s.handleAddAttributes)
	s.handle("PUT /api/indicators/{id}/attributes/{aid}", true, s.handlePutAttribute)
	s.handle("DELETE /api/indicators/{id}/attributes/{aid}", true, s.handleDeleteAttribute)
	s.handle("GET /api/indicators/{id}/tags", true, s.handleListTags)
	s.handle("POST /api/indicators/{id}/tags", true, s.handleAddTags)
	s.handle("DELETE /api/indicators/{id}/tags/{tid}", true, s.handleDeleteTag)
	s.handle("GET /api/indicators/{id}/comments", true, s.handleListComments)
	s.handle("POST /api/indicators/{id}/comments", true, s.handleAddComment)
	s.handle("GET /api/indicators/{id}/sources", true, s.handleListSources)
	s.handle("POST /api/indicators/{id}/sources", true, s.handleAddSources)
	s.handle("DELETE /api/indicators/{id}/sources/{pid}", true, s.handleDeleteSource)

	s.handle("/api/", true, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "Not found.")
	})

	s.mux.HandleFunc("GET /{$}", s.handlePage)
	s.mux.HandleFunc("GET /_emulator/faults", s.handleGetFaults)
	s.mux.HandleFunc("POST /_emulator/faults", s.handleSetFaults)
	s.mux.HandleFunc("DELETE /_emulator/faults", s.handleClearFaults)
	s.mux.HandleFunc("GET /_emulator/stats", s.handleStats)
	s.mux.HandleFunc("GET /_emulator/dump", s.handleDump)
	s.mux.HandleFunc("POST /_emulator/reset", s.handleReset)
}

// handle registers an /api/ route wrapped with stats, fault injection and
// (when auth is true) the bearer check, in that order.
func (s *Server) handle(pattern string, auth bool, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		// The call is counted on arrival and the response when its status is
		// committed (or the connection dropped), so a client never sees an
		// answer before the counters do.
		s.recordCall(pattern)
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK, srv: s}
		defer rec.count()
		if s.injectFault(rec, r) {
			return
		}
		if auth && !s.authorized(r) {
			writeError(rec, http.StatusUnauthorized, "Unauthenticated.")
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, maxBody)
		h(rec, r)
		s.log.Debug("tqemu request", "method", r.Method, "path", r.URL.Path, "status", rec.code)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	srv         *Server
	code        int
	wroteHeader bool
	counted     bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.code, s.wroteHeader = code, true
		s.count()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// count records the response code once.
func (s *statusRecorder) count() {
	if !s.counted {
		s.counted = true
		s.srv.recordResponse(s.code)
	}
}

// Unwrap lets http.ResponseController reach the underlying writer (hijack).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// envelope is the {"data": …} wrapper used by every response [V S1].
type envelope struct {
	Total  *int `json:"total,omitempty"`
	Limit  *int `json:"limit,omitempty"`
	Offset *int `json:"offset,omitempty"`
	Data   any  `json:"data"`
}

// respBufs holds response buffers between requests (large consume responses would otherwise
// allocate and clear megabytes each time).
var respBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledResp is the largest buffer kept in respBufs (a consume response of 500 indicators
// with their attributes is several MiB).
const maxPooledResp = maxBody

// writeJSON encodes v (as encoding/json's Encoder would: HTML-escaped, sorted map keys, trailing
// newline) with the faster segmentio encoder and writes it in one piece with a Content-Length.
func writeJSON(w http.ResponseWriter, code int, v any) {
	bp := respBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledResp {
			respBufs.Put(bp)
		}
	}()
	b, err := segjson.Append((*bp)[:0], v, segjson.EscapeHTML|segjson.SortMapKeys)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []string{"encode response: " + err.Error()}})
		return
	}
	b = append(b, '\n')
	*bp = b
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeData(w http.ResponseWriter, code int, data any) {
	writeJSON(w, code, envelope{Data: data})
}

func writeList(w http.ResponseWriter, code int, data any, total int) {
	writeJSON(w, code, envelope{Total: &total, Data: data})
}

// ValidationErrors maps a field to its messages, as in the 400 body
// {"data":{"errors":{field:[msg]}}} [V-mock S5].
type ValidationErrors map[string][]string

func (v ValidationErrors) add(field, msg string) { v[field] = append(v[field], msg) }

func writeValidation(w http.ResponseWriter, errs ValidationErrors) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"data": map[string]any{"errors": errs}})
}

// writeError writes the other documented error form {"errors":[msg]}
// [V-mock S5]; which status uses which form on the real server is [I].
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"errors": []string{msg}})
}

// readBody reads the whole body; an empty body yields nil.
func readBody(r *http.Request) ([]byte, error) {
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= maxBody {
		// One allocation of the announced size instead of io.ReadAll's repeated growth.
		b = make([]byte, n)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(r.Body)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errors.New("request body too large")
		}
		return nil, err
	}
	return b, nil
}
