package bench

import (
	"testing"

	"github.com/heraldpush/herald/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
