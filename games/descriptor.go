package games

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/protocol"
)

// Descriptor returns the game's client descriptor (protocol.md section 2): what
// a client computes its subscriptions from, under Herald's topic prefix.
func (g Game) Descriptor(prefix string) protocol.Descriptor {
	d := protocol.Descriptor{
		V: protocol.DescriptorVersion, Game: g.ID, Prefix: prefix, DefaultLocale: g.DefaultLocale, ZoneTag: g.ZoneTag,
		Tags:      make(map[string]protocol.DescriptorTag, len(g.Tags)),
		UpdatedAt: g.UpdatedAt.UTC().Truncate(time.Millisecond),
	}
	for name, t := range g.Tags {
		dt := protocol.DescriptorTag{Values: t.Values}
		for _, b := range t.Bands {
			dt.Bands = append(dt.Bands, [2]int64(b))
		}
		d.Tags[name] = dt
	}
	return d
}

// MarkDescriptorsStale makes every game's descriptor due to be published again,
// inside tx: the retained-store guard calls it in the transaction that
// requests a restore, since a broker that lost its retained messages lost the
// descriptors too.
func MarkDescriptorsStale(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE game_descriptors SET version = version + 1`); err != nil {
		return fmt.Errorf("mark game descriptors stale: %w", err)
	}
	return nil
}
