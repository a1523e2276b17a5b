package segments

// SetSpill makes s sort uploads that are not in order in runs of n bytes of
// ids written to dir, so that tests reach the merge of several runs with
// small lists and can see that the runs' files are removed.
func SetSpill(s *Store, dir string, n int) { s.spillDir, s.runBytes = dir, n }
