package sla

import (
	"errors"
	"time"
)

// Interval is one opening interval of a day, in minutes after local
// midnight: 0 <= Start < End <= 1440.
type Interval struct {
	Start, End int
}

// Date is a civil date in a schedule's time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Schedule is a weekly business-hours calendar read in one time zone.
//
// All arithmetic is on absolute instants. Each opening interval becomes the
// span between the instants at which the local wall clock shows its start
// and end, so an interval that contains a daylight-saving change lasts its
// real length: 00:00-04:00 on a spring-forward day is three hours, on a
// fall-back day five. A wall time that a spring-forward jump skips maps to
// the instant of the jump, and a wall time that a fall-back repeats maps to
// its first occurrence.
type Schedule struct {
	Location *time.Location
	Week     [7][]Interval // indexed by time.Weekday, sorted, not overlapping
	Holidays map[Date]bool // closed all day
}

// horizonDays bounds the search for opening hours. Add and NextOpening
// return ErrNoOpening when they would need to look further ahead.
const horizonDays = 20 * 366

// ErrNoOpening reports that a schedule has too little opening time within
// horizonDays to reach a result.
var ErrNoOpening = errors.New("business hours: not enough opening time within 20 years")

// Add returns the instant at which d of business time has passed since
// from. With d = 0 it returns the next opening at or after from, which is
// from itself while the schedule is open.
func (s *Schedule) Add(from time.Time, d time.Duration) (time.Time, error) {
	remaining := d
	var result time.Time
	found := s.windows(from, func(open, close time.Time) bool {
		start := laterOf(open, from)
		available := close.Sub(start)
		if remaining <= available {
			result = start.Add(remaining)
			return false
		}
		remaining -= available
		return true
	})
	if !found {
		return time.Time{}, ErrNoOpening
	}
	return result, nil
}

// NextOpening returns the first instant at or after t at which the schedule
// is open.
func (s *Schedule) NextOpening(t time.Time) (time.Time, error) {
	return s.Add(t, 0)
}

// Between returns the business time in [from, to): the sum of the opening
// intervals' overlap with it. It is zero when to is not after from.
func (s *Schedule) Between(from, to time.Time) time.Duration {
	var total time.Duration
	if !to.After(from) {
		return 0
	}
	s.windows(from, func(open, close time.Time) bool {
		if !open.Before(to) {
			return false
		}
		total += earlierOf(close, to).Sub(laterOf(open, from))
		return true
	})
	return total
}

// windows calls visit with each opening window, as absolute instants, that
// closes after from, in order, until visit returns false. It returns true
// when visit stopped the walk, and false when the walk reached horizonDays.
func (s *Schedule) windows(from time.Time, visit func(open, close time.Time) bool) bool {
	local := from.In(s.Location)
	// Start a day early: a window of the previous local date can still be
	// open at from when a daylight-saving change falls at midnight.
	first := time.Date(local.Year(), local.Month(), local.Day()-1, 12, 0, 0, 0, time.UTC)
	for i := range horizonDays {
		day := first.AddDate(0, 0, i)
		date := Date{day.Year(), day.Month(), day.Day()}
		if s.Holidays[date] {
			continue
		}
		for _, iv := range s.Week[day.Weekday()] {
			closeAt := wallInstant(date, iv.End, s.Location)
			if !closeAt.After(from) {
				continue
			}
			openAt := wallInstant(date, iv.Start, s.Location)
			if !closeAt.After(openAt) {
				// The whole interval fell into a spring-forward gap.
				continue
			}
			if !visit(openAt, closeAt) {
				return true
			}
		}
	}
	return false
}

// wallInstant returns the first instant at which the wall clock in loc
// shows date at minute minutes after midnight (1440 is the next midnight).
// A wall time skipped by a daylight-saving jump maps to the instant of the
// jump.
func wallInstant(date Date, minute int, loc *time.Location) time.Time {
	naive := time.Date(date.Year, date.Month, date.Day, 0, 0, 0, 0, time.UTC).Add(time.Duration(minute) * time.Minute)

	// The offsets in force a day either side cover every real zone, whose
	// offset changes at most once within two days.
	_, before := naive.Add(-24 * time.Hour).In(loc).Zone()
	_, after := naive.Add(24 * time.Hour).In(loc).Zone()
	var best time.Time
	for _, offset := range []int{before, after} {
		candidate := naive.Add(-time.Duration(offset) * time.Second)
		if _, got := candidate.In(loc).Zone(); got != offset {
			continue
		}
		if best.IsZero() || candidate.Before(best) {
			best = candidate
		}
	}
	if !best.IsZero() {
		return best
	}

	// No offset maps to this wall time, so it lies in a spring-forward gap.
	// Read with the earlier offset it lands after the jump, in the zone
	// period that the jump starts.
	start, _ := naive.Add(-time.Duration(before) * time.Second).In(loc).ZoneBounds()
	return start
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlierOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
