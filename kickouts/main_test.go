package kickouts

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/heraldpush/herald/internal/dbtest"
)

// TestMain checks that no goroutine (the receipt listener, recovery) outlives
// the tests, then drops the template database their databases are cloned
// from (internal/dbtest).
func TestMain(m *testing.M) { goleak.VerifyTestMain(dbtest.WithTemplate(m)) }
