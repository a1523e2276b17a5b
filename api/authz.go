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
	"github.com/heraldpush/herald/games"
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
	return s.serve(func(w http.ResponseWriter, r *http.Request) error {
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		presented = strings.TrimSpace(presented)
		addr, sum, now := clientPrefix(r), sha256.Sum256([]byte(presented)), time.Now()
		if wait := s.authFails.admit(addr, sum, now); wait > 0 {
			return tooManyRequests(wait, "too many failed authentications from this address; retry after the Retry-After delay")
		}
		if !ok {
			s.authFails.failed(addr, sum, now)
			return unauthorized("send an API key as Authorization: Bearer <key>")
		}
		lookup, cancel := context.WithTimeout(r.Context(), s.DBTimeout)
		key, err := s.Keys.Authenticate(lookup, presented)
		cancel()
		if errors.Is(err, auth.ErrUnauthenticated) {
			s.authFails.failed(addr, sum, now)
			return unauthorized(err.Error())
		}
		if err != nil {
			return err
		}
		s.authFails.succeeded(sum, now)
		ctx := context.WithValue(r.Context(), keyCtx{}, key)
		ctx = audit.WithActor(ctx, audit.Actor{KeyID: &key.ID, Name: key.Name})
		next.ServeHTTP(w, r.WithContext(ctx))
		return nil
	})
}

// unauthorized refuses a request without a live API key.
func unauthorized(detail string) error {
	return &httpError{status: http.StatusUnauthorized, detail: detail,
		header: http.Header{"Www-Authenticate": {`Bearer realm="herald"`}}}
}

// require lets a request through only if its path parameters are ids, its
// key's role grants perm and, on routes under a game, the key may touch that
// game. A game outside the key's scope answers 404, as if it did not exist.
func (s *Server) require(perm auth.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return s.serve(func(w http.ResponseWriter, r *http.Request) error {
			if err := checkPathParams(r); err != nil {
				return err
			}
			key := callerKey(r.Context())
			if game := chi.URLParam(r, "game"); game != "" && !key.Allows(game) {
				return games.ErrNotFound // as if it did not exist
			}
			if !key.Role.Can(perm) {
				return forbidden(key.Role, perm)
			}
			next.ServeHTTP(w, r)
			return nil
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
	return s.serve(func(w http.ResponseWriter, r *http.Request) error {
		lim := s.limits.get(callerKey(r.Context()).ID.String())
		res := lim.Reserve()
		if delay := res.Delay(); delay > 0 || !res.OK() {
			res.Cancel()
			return tooManyRequests(delay, "this API key is over its rate limit; retry after the Retry-After delay")
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// retryAfterHeader tells a refused caller how long to wait, in whole seconds,
// at least 1.
func retryAfterHeader(wait time.Duration) http.Header {
	return http.Header{"Retry-After": {strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1))}}
}
