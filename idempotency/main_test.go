package idempotency_test

import (
	"testing"

	"github.com/heraldpush/herald/internal/dbtest"
)

// TestMain drops, once the tests end, the template database their databases
// are cloned from (internal/dbtest).
func TestMain(m *testing.M) { dbtest.Main(m) }
