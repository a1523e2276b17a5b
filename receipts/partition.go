package receipts

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/postgres"
)

// The receipts table is partitioned by range of send_id, one partition per UTC
// day: a send id is a UUIDv7 whose first 48 bits are its creation time in Unix
// milliseconds, so the ids of day d are those from dayBound(d) (the day's first
// millisecond, every other bit zero) to dayBound(d+1).

const (
	msPerDay = 24 * 60 * 60 * 1000
	// partitionPrefix names partitions receipts_pYYYYMMDD.
	partitionPrefix = "receipts_p"
	// Ahead is how many days after today Maintain keeps partitions for, so
	// that ingestion rarely has to create one (which locks the table briefly).
	Ahead = 2
	// partitionLock is the advisory lock under which partitions are created
	// and dropped, by the scheduler leader and by ingestion on any replica.
	partitionLock = 0x4865_7261_6c64_52 // "HeraldR"
	// ddlLockTimeout bounds how long creating or dropping a partition waits
	// for the table: it must not queue up ingestion and stats behind it.
	ddlLockTimeout = "2s"
)

// sendDay returns the UTC day (days since the Unix epoch) of a UUIDv7, and
// false for any other UUID, which cannot be a send.
func sendDay(id uuid.UUID) (int64, bool) {
	if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
		return 0, false
	}
	var b [8]byte
	copy(b[2:], id[:6])
	return int64(binary.BigEndian.Uint64(b[:])) / msPerDay, true
}

// dayOf returns the UTC day of t.
func dayOf(t time.Time) int64 {
	return t.UnixMilli() / msPerDay // times before 1970 do not occur
}

// dayBound is the smallest UUID of day d.
func dayBound(d int64) uuid.UUID {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(d*msPerDay))
	var id uuid.UUID
	copy(id[:6], b[2:])
	return id
}

func partitionName(d int64) string {
	return partitionPrefix + time.UnixMilli(d*msPerDay).UTC().Format("20060102")
}

// partitionDay reads the day of a partition's name; false for another name.
func partitionDay(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, partitionPrefix)
	if !ok {
		return 0, false
	}
	t, err := time.Parse("20060102", rest)
	if err != nil {
		return 0, false
	}
	return dayOf(t), true
}

// expired reports whether the receipts of day d's sends are past retention at
// now: the whole day is older than now - retention. A partition is dropped
// then, so a send is kept between retention and retention plus a day.
func (s *Store) expired(d int64, now time.Time) bool {
	return (d+1)*msPerDay <= now.Add(-s.retention).UnixMilli()
}

// Maintain keeps the partitions in order, as the scheduler leader does every
// few minutes: it creates those of today and the next Ahead days, and drops
// every partition whose receipts are all past retention. It returns the
// partitions it created and dropped.
func (s *Store) Maintain(ctx context.Context, now time.Time) (created, dropped []string, err error) {
	today := dayOf(now)
	want := make([]int64, 0, Ahead+1)
	for d := today; d <= today+Ahead; d++ {
		want = append(want, d)
	}
	if created, err = s.ensureDays(ctx, want); err != nil {
		return created, nil, err
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		days, err := lockPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, d := range days {
			if !s.expired(d, now) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+partitionName(d)); err != nil {
				return fmt.Errorf("drop receipts partition %s: %w", partitionName(d), err)
			}
			dropped = append(dropped, partitionName(d))
		}
		return nil
	})
	if err != nil {
		return created, nil, err
	}
	s.forget(dropped)
	return created, dropped, nil
}

// ensureDays creates the partitions of days that do not exist yet and
// returns the names of those it created.
func (s *Store) ensureDays(ctx context.Context, days []int64) ([]string, error) {
	var created []string
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		created = created[:0]
		existing, err := lockPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, d := range days {
			if slices.Contains(existing, d) {
				continue
			}
			_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF receipts FOR VALUES FROM ('%s') TO ('%s')`,
				partitionName(d), dayBound(d), dayBound(d+1)))
			if err != nil {
				return fmt.Errorf("create receipts partition %s: %w", partitionName(d), err)
			}
			existing = append(existing, d)
			created = append(created, partitionName(d))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.days == nil {
		s.days = map[int64]bool{}
	}
	for _, d := range days {
		s.days[d] = true
	}
	s.mu.Unlock()
	return created, nil
}

// lockPartitions takes the partition lock for the rest of tx, bounds its DDL's
// wait for the table, and lists the days that have a partition.
func lockPartitions(ctx context.Context, tx pgx.Tx) ([]int64, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, partitionLock); err != nil {
		return nil, fmt.Errorf("lock receipts partitions: %w", err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+ddlLockTimeout+`'`); err != nil {
		return nil, fmt.Errorf("set lock timeout: %w", err)
	}
	return partitionDays(ctx, tx)
}

// partitionDays lists the days that have a partition.
func partitionDays(ctx context.Context, q postgres.DBTX) ([]int64, error) {
	rows, _ := q.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'receipts'::regclass`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list receipts partitions: %w", err)
	}
	var days []int64
	for _, n := range names {
		if d, ok := partitionDay(n); ok {
			days = append(days, d)
		}
	}
	return days, nil
}

// missingDays returns those of days not known to have a partition, reading
// the catalog the first time.
func (s *Store) missingDays(ctx context.Context, days []int64) ([]int64, error) {
	s.mu.Lock()
	loaded := s.days != nil
	s.mu.Unlock()
	if !loaded {
		existing, err := partitionDays(ctx, s.db)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.days = map[int64]bool{}
		for _, d := range existing {
			s.days[d] = true
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []int64
	for _, d := range days {
		if !s.days[d] {
			missing = append(missing, d)
		}
	}
	return missing, nil
}

// forgetAll drops what is known of partitions, after a write found one
// missing: the next write reads the catalog again.
func (s *Store) forgetAll() {
	s.mu.Lock()
	s.days = nil
	s.mu.Unlock()
}

// forget drops named partitions from what is known.
func (s *Store) forget(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if d, ok := partitionDay(n); ok {
			delete(s.days, d)
		}
	}
}
