package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

type planRequest struct {
	SegmentID *string              `json:"segment_id"`
	Rule      *segments.StrictRule `json:"rule"`
}

// planResponse is a delivery plan as operators read it: full topic bases.
type planResponse struct {
	Exact  bool  `json:"exact"`
	Topics int64 `json:"topics"`
	// Players is null where Herald cannot count them; PlayersNote says why, or
	// why a count is only an upper bound.
	Players     *int64       `json:"players"`
	PlayersNote string       `json:"players_note,omitempty"`
	Targets     []planTarget `json:"targets"`
}

// planTarget is one topic base with the filter clients there evaluate. A member
// target stands for one player topic per member; its topic shows "{member}".
type planTarget struct {
	Topic   string         `json:"topic"`
	Members bool           `json:"members,omitempty"`
	Filter  *protocol.Rule `json:"filter,omitempty"`
}

// previewPlan resolves a segment or an inline rule into its delivery plan without
// sending anything.
func (s *Server) previewPlan(w http.ResponseWriter, r *http.Request) error {
	var req planRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if (req.SegmentID == nil) == (req.Rule == nil) {
		return fielderr.List{
			{Field: "segment_id", Message: "give exactly one of segment_id and rule"},
			{Field: "rule", Message: "give exactly one of segment_id and rule"},
		}
	}
	game := chi.URLParam(r, "game") // liveGame answered 404 or 410 already
	var a segments.Audience
	if req.SegmentID != nil {
		id, err := uuid.Parse(*req.SegmentID)
		if err != nil {
			return fielderr.New("segment_id", "is not a segment id")
		}
		a.SegmentID = &id
	} else {
		a.Rule = &req.Rule.Rule
	}
	plan, err := s.Segments.Preview(r.Context(), game, a)
	if err != nil {
		return err
	}
	resp := s.planBody(game, plan)
	return writeJSON(w, http.StatusOK, resp)
}

// planBody renders a plan with full topic bases.
func (s *Server) planBody(game string, plan segments.Plan) planResponse {
	resp := planResponse{Exact: plan.Exact, Topics: plan.Topics, Players: plan.Players, PlayersNote: plan.PlayersNote,
		Targets: make([]planTarget, len(plan.Targets))}
	for i, t := range plan.Targets {
		keys := t.Keys
		if t.Members {
			keys = []string{"{member}"}
		}
		resp.Targets[i] = planTarget{Topic: protocol.Base(s.TopicPrefix, game, t.Scope, keys...), Members: t.Members, Filter: t.Filter}
	}
	return resp
}
