package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
)

type keyCtx struct{}

// callerKey returns the API key the request was authenticated with.
func callerKey(ctx context.Context) auth.Key {
	k, _ := ctx.Value(keyCtx{}).(auth.Key)
	return k
}

// authenticate admits requests bearing a live API key and records the key as
// the actor of whatever they change.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			s.unauthorized(w, "send an API key as Authorization: Bearer <key>")
			return
		}
		lookup, cancel := context.WithTimeout(r.Context(), s.DBTimeout)
		key, err := s.Keys.Authenticate(lookup, strings.TrimSpace(presented))
		cancel()
		if errors.Is(err, auth.ErrUnauthenticated) {
			s.unauthorized(w, err.Error())
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), keyCtx{}, key)
		ctx = audit.WithActor(ctx, audit.Actor{KeyID: &key.ID, Name: key.Name})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
	writeProblem(w, http.StatusUnauthorized, detail)
}

// require lets a request through only if its key's role grants perm and, on
// routes under a game, the key may touch that game. A game outside the key's
// scope answers 404, as if it did not exist.
func (s *Server) require(perm auth.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			seconds := int(math.Ceil(delay.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(seconds, 1)))
			writeProblem(w, http.StatusTooManyRequests, "this API key is over its rate limit; retry after the Retry-After delay")
			return
		}
		next.ServeHTTP(w, r)
	})
}
