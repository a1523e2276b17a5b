package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/heraldpush/herald/games"
)

// archivedOK are the routes under a game that still answer once it is
// archived: reading the game, and (un)archiving it.
var archivedOK = map[string]bool{
	"GET /games/{game}":            true,
	"POST /games/{game}/archive":   true,
	"POST /games/{game}/unarchive": true,
}

// underLiveGame reports whether a route needs its game not to be archived:
// every route under /games/{game} but those of archivedOK.
func underLiveGame(method, pattern string) bool {
	under := pattern == "/games/{game}" || strings.HasPrefix(pattern, "/games/{game}/")
	return under && !archivedOK[method+" "+pattern]
}

// liveGame answers 404 for a game that does not exist and 410 for an archived
// one before the route's handler runs, so that nothing under an archived game
// is read or changed (creating and changing campaigns and segments also
// check it in their transactions: games.GetShared; a kick-out, which creates
// nothing a game's archiving must wait for, relies on this check alone). It bounds its lookup by DBTimeout itself,
// for it also guards member uploads, which have no overall time limit.
func (s *Server) liveGame(next http.Handler) http.Handler {
	return s.serve(func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), s.DBTimeout)
		g, err := s.Games.Get(ctx, chi.URLParam(r, "game"))
		cancel()
		if err != nil {
			return err
		}
		if g.ArchivedAt != nil {
			return games.ErrArchived
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), liveGameKey{}, g)))
		return nil
	})
}

// liveGameKey keys the game liveGame read in the request's context.
type liveGameKey struct{}

// checkedGame returns the game liveGame read for the request, saving a
// handler that needs it (a kick-out needs its default locale) a round trip.
func checkedGame(ctx context.Context) (games.Game, bool) {
	g, ok := ctx.Value(liveGameKey{}).(games.Game)
	return g, ok
}
