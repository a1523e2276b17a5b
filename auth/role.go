// Package auth owns who may call Herald: API keys (random, shown once, stored
// hashed, with an optional expiry), the role each carries and the games it may
// touch, and the one table of what each role is permitted to do.
package auth

// Role is what a key's holder is: it decides the permissions.
type Role string

// The roles of the README's Access section.
const (
	RoleAdmin     Role = "admin"
	RoleOperator  Role = "operator"
	RoleMarketing Role = "marketing"
	RoleService   Role = "service"
)

// Permission is one kind of thing a caller may do. Every route names the one it
// needs; campaign routes also check the kind (marquee needs PermMarquee).
type Permission string

// Permissions.
const (
	PermGamesRead      Permission = "games:read"
	PermGamesWrite     Permission = "games:write"
	PermSegmentsRead   Permission = "segments:read" // segments and plan previews
	PermSegmentsWrite  Permission = "segments:write"
	PermCampaignsRead  Permission = "campaigns:read"
	PermCampaignsWrite Permission = "campaigns:write" // ad and notice campaigns
	PermMarquee        Permission = "campaigns:marquee"
	PermKickouts       Permission = "kickouts:write"
	PermStatsRead      Permission = "stats:read"
	PermKeys           Permission = "api-keys:admin"
	PermAudit          Permission = "audit:read"
)

// grants is the whole policy. admin may do everything; the others exactly what
// is listed. Marketing reads games (it needs their tags to write segments) but
// sends no marquee and kicks nobody; services kick players and read stats only.
var grants = map[Role][]Permission{
	RoleOperator: {PermGamesRead, PermGamesWrite, PermSegmentsRead, PermSegmentsWrite, PermCampaignsRead,
		PermCampaignsWrite, PermMarquee, PermKickouts, PermStatsRead},
	RoleMarketing: {PermGamesRead, PermSegmentsRead, PermSegmentsWrite, PermCampaignsRead, PermCampaignsWrite,
		PermStatsRead},
	RoleService: {PermKickouts, PermStatsRead},
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleOperator, RoleMarketing, RoleService:
		return true
	}
	return false
}

// Can reports whether the role grants p.
func (r Role) Can(p Permission) bool {
	if r == RoleAdmin {
		return true
	}
	for _, g := range grants[r] {
		if g == p {
			return true
		}
	}
	return false
}
