package postgres

// TrimPage turns the rows of a query that asked for limit+1 rows into a page
// of at most limit, and reports whether more follow (the extra row's only use).
func TrimPage[T any](rows []T, limit int) ([]T, bool) {
	if len(rows) > limit {
		return rows[:limit], true
	}
	return rows, false
}
