package server

import "time"

// SetUnsignedSummaryEvery shortens the interval of the unsigned budget's summary line, so
// a test sees more than one interval without waiting minutes.
func SetUnsignedSummaryEvery(s *Server, d time.Duration) { s.budget.summaryEvery = d }
