package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

type keyCtx struct{}

// callerKey returns the API key the request was authenticated with.
func callerKey(ctx context.Context) auth.Key {
	k, _ := ctx.Value(keyCtx{}).(auth.Key)
	return k
}

// authenticate admits requests bearing a live API key and records the key as
// the actor of whatever they change. An address that failed to authenticate
// too often is refused before any database lookup (see failLimiter).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		presented = strings.TrimSpace(presented)
		addr, sum, now := clientPrefix(r), sha256.Sum256([]byte(presented)), time.Now()
		if wait := s.authFails.admit(addr, sum, now); wait > 0 {
			retryAfter(w, wait)
			writeProblem(w, http.StatusTooManyRequests, "too many failed authentications from this address; retry after the Retry-After delay")
			return
		}
		if !ok {
			s.authFails.failed(addr, sum, now)
			s.unauthorized(w, "send an API key as Authorization: Bearer <key>")
			return
		}
		lookup, cancel := context.WithTimeout(r.Context(), s.DBTimeout)
		key, err := s.Keys.Authenticate(lookup, presented)
		cancel()
		if errors.Is(err, auth.ErrUnauthenticated) {
			s.authFails.failed(addr, sum, now)
			s.unauthorized(w, err.Error())
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.authFails.succeeded(sum, now)
		ctx := context.WithValue(r.Context(), keyCtx{}, key)
		ctx = audit.WithActor(ctx, audit.Actor{KeyID: &key.ID, Name: key.Name})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
	writeProblem(w, http.StatusUnauthorized, detail)
}

// require lets a request through only if its path parameters are ids, its
// key's role grants perm and, on routes under a game, the key may touch that
// game. A game outside the key's scope answers 404, as if it did not exist.
func (s *Server) require(perm auth.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := checkPathParams(r); err != nil {
				s.writeError(w, r, err)
				return
			}
			key := callerKey(r.Context())
			if game := chi.URLParam(r, "game"); game != "" && !key.Allows(game) {
				writeProblem(w, http.StatusNotFound, "no such game")
				return
			}
			if !key.Role.Can(perm) {
				s.writeError(w, r, forbidden(key.Role, perm))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// checkPathParams refuses path parameters ({game}, {id}) outside the id
// alphabet (protocol.CheckID), naming each, so that no NUL, control character or
// other stray byte reaches Postgres or a topic. Handlers parse {id} further: a
// well-formed id that is no UUID is simply not found.
func checkPathParams(r *http.Request) error {
	var errs fielderr.List
	params := chi.RouteContext(r.Context()).URLParams
	for i, name := range params.Keys {
		if name == "*" {
			continue // the rest of the path below a mount point, not a parameter
		}
		if err := protocol.CheckID(params.Values[i]); err != nil {
			errs.Add(name, "path parameter %v", err)
		}
	}
	return errs.Err()
}

// forbidden is the refusal of a permission that depends on the request body,
// such as a marquee campaign from a marketing key.
func forbidden(role auth.Role, perm auth.Permission) error {
	return &httpError{status: http.StatusForbidden, detail: "the " + string(role) + " role may not do this (" + string(perm) + ")"}
}

// limiter is a token bucket per API key.
type limiter struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	keys  map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: burst, keys: map[string]*rate.Limiter{}}
}

func (l *limiter) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.keys[key]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.keys[key] = lim
	}
	return lim
}

// rateLimit answers 429 with Retry-After when a key exceeds its request rate.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lim := s.limits.get(callerKey(r.Context()).ID.String())
		res := lim.Reserve()
		if delay := res.Delay(); delay > 0 || !res.OK() {
			res.Cancel()
			retryAfter(w, delay)
			writeProblem(w, http.StatusTooManyRequests, "this API key is over its rate limit; retry after the Retry-After delay")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// retryAfter tells a refused caller how long to wait, in whole seconds, at least 1.
func retryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1)))
}
