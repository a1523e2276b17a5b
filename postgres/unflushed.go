package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SendUnflushed runs the statements queue adds to a batch in one transaction
// that commits without waiting for the disk (synchronous_commit off), in one
// round trip. It is for writes that a crash may lose at no harm (a mark that
// recovery redoes, a claim that only guards work committed durably after it):
// they are visible to other sessions at once all the same.
func SendUnflushed(ctx context.Context, db *pgxpool.Pool, queue func(*pgx.Batch)) error {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	queue(b)
	b.Queue(`COMMIT`)
	return db.SendBatch(ctx, b).Close()
}
