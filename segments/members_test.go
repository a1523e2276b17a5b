package segments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/dbtest"
	"github.com/heraldpush/herald/segments"
)

// memberFixture is a segment that uses its member list, in a database of its own.
type memberFixture struct {
	t      *testing.T
	ctx    context.Context
	store  *segments.Store
	seg    uuid.UUID
	list   func() int64    // the segment's current list
	stored func() []string // its members, read a page at a time
}

func newMemberFixture(t *testing.T, spillDir string, runBytes int) *memberFixture {
	t.Helper()
	pool, _ := dbtest.NewPool(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Name: "test"})
	_, err := games.NewStore(pool).Create(ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en"})
	require.NoError(t, err)
	store := segments.NewStore(pool)
	segments.SetSpill(store, spillDir, runBytes)
	rule, err := segments.ParseRule(json.RawMessage(`{"members":true}`), "rule")
	require.NoError(t, err)
	seg, err := store.Create(ctx, segments.Segment{GameID: "g1", Name: "s", Rule: rule})
	require.NoError(t, err)
	f := &memberFixture{t: t, ctx: ctx, store: store, seg: seg.ID}
	f.list = func() (id int64) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT member_list_id FROM segments WHERE id = $1`, seg.ID).Scan(&id))
		return id
	}
	f.stored = func() []string {
		var all []string
		for after := ""; ; {
			page, err := segments.Members(ctx, pool, f.list(), after, 7)
			require.NoError(t, err)
			all = append(all, page...)
			if len(page) < 7 {
				break
			}
			after = page[len(page)-1]
		}
		whole, err := segments.Members(ctx, pool, f.list(), "", 100_000)
		require.NoError(t, err)
		require.Equal(t, all, whole, "read in pages of 7 or all at once, the list is the same")
		return all
	}
	return f
}

// upload replaces the members and checks the count against what is stored.
func (f *memberFixture) upload(body string) []string {
	f.t.Helper()
	n, err := f.store.ReplaceMembers(f.ctx, "g1", f.seg, strings.NewReader(body))
	require.NoError(f.t, err)
	got := f.stored()
	require.EqualValues(f.t, len(got), n, "the count answered is the number of members stored")
	return got
}

// TestReplaceMembersInAnyOrder uploads lists in order, out of order from the
// start, and out of order after a long ordered stretch, with repeats and the
// line endings clients send: each reads back as the sorted set of its ids, a
// page at a time, and the sort leaves no file behind.
func TestReplaceMembersInAnyOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := newMemberFixture(t, dir, 64) // runs of a few ids: many runs to merge

	require.Equal(t, []string{"a", "b", "c"}, f.upload("a\r\na\n\nb\nc"))
	require.Equal(t, []string{"a", "b", "c", "d"}, f.upload("d\nb\na\nc\nb\n"))

	var ids []string
	for i := range 3000 {
		ids = append(ids, fmt.Sprintf("p-%05d", i))
	}
	want := slices.Clone(ids)
	ids = append(ids, "p-00007", "a", "p-02999", "zz", "p-01500") // then out of order, with repeats
	want = append(want, "a", "zz")
	slices.Sort(want)
	require.Equal(t, want, f.upload(strings.Join(ids, "\n")))

	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	require.Equal(t, want, f.upload(strings.Join(ids, "\n")+"\n"))

	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "the sort's files are removed")
}

// TestReplaceMembersMidwayFailureKeepsOldList breaks off uploads while they
// are sorted (an invalid line, a body that fails): the old list stays, the
// invalid line is named, and no file is left.
func TestReplaceMembersMidwayFailureKeepsOldList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := newMemberFixture(t, dir, 64)
	f.upload("x\ny\n")
	list := f.list()

	_, err := f.store.ReplaceMembers(f.ctx, "g1", f.seg, strings.NewReader("b\na\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\nbad id\n"))
	var fe fielderr.List
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe.Error(), "line 15")

	broken := errors.New("connection reset")
	body := io.MultiReader(strings.NewReader("z\ny\nx\nw\nv\nu\nt\ns\nr\nq\np\no\n"), iotest.ErrReader(broken))
	_, err = f.store.ReplaceMembers(f.ctx, "g1", f.seg, body)
	require.ErrorIs(t, err, broken)

	require.Equal(t, list, f.list(), "the old list stays")
	require.Equal(t, []string{"x", "y"}, f.stored())
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "the sort's files are removed")
}
