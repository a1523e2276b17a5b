package bench

import (
	"os"
	"testing"

	"github.com/heraldpush/herald/internal/dbtest"
)

// TestMain drops the template database (dbtest) and the herald binary built
// for the scenarios once the tests end.
func TestMain(m *testing.M) {
	code := dbtest.WithTemplate(m).Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil && code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
