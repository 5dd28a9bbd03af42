package sla

import (
	"time"

	"github.com/outposthq/outpost/models"
)

// statusChange is one entry of a ticket's status timeline.
type statusChange struct {
	At     time.Time
	Status models.Status
}

// segment is a stretch of time in which a clock runs. A zero end means the
// clock still runs.
type segment struct {
	start, end time.Time
}

func (s segment) open() bool { return s.end.IsZero() }

// counter measures time on one kind of clock: every minute, or the opening
// hours of a schedule.
type counter interface {
	Add(from time.Time, d time.Duration) (time.Time, error)
	Between(from, to time.Time) time.Duration
}

// calendar counts every minute.
type calendar struct{}

func (calendar) Add(from time.Time, d time.Duration) (time.Time, error) { return from.Add(d), nil }

func (calendar) Between(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	return to.Sub(from)
}

// buildSegments returns the stretches of the timeline in which runs(status)
// holds, cut off at stop when stop is set. The timeline starts with the
// ticket's creation and is sorted by time.
func buildSegments(timeline []statusChange, runs func(models.Status) bool, stop *time.Time) []segment {
	var out []segment
	for i, c := range timeline {
		if !runs(c.Status) {
			continue
		}
		seg := segment{start: c.At}
		if i+1 < len(timeline) {
			seg.end = timeline[i+1].At
		}
		if n := len(out); n > 0 && !out[n-1].open() && out[n-1].end.Equal(seg.start) {
			// open -> pending -> open keeps two stretches, but two running
			// statuses in a row are one stretch.
			out[n-1].end = seg.end
			continue
		}
		out = append(out, seg)
	}
	if stop == nil {
		return out
	}
	var cut []segment
	for _, seg := range out {
		if seg.start.After(*stop) {
			break
		}
		if seg.open() || seg.end.After(*stop) {
			seg.end = *stop
		}
		cut = append(cut, seg)
	}
	return cut
}

// evaluation is the state of one clock after replaying its stretches.
type evaluation struct {
	// reached is the instant at which the used time reaches the target:
	// within a closed stretch, or at any time (even ahead) in the open one.
	// It is nil when a stopped clock has time left.
	reached *time.Time
	// projected is the due time in force during the last stretch: when the
	// target is reached if that stretch runs on. Nil without stretches.
	projected *time.Time
	// warn is the instant at which the used time reaches target minus the
	// warning lead, or nil when the clock has not and is stopped, or there
	// is no warning.
	warn *time.Time
	// runningSince is the start of the open stretch, or nil when stopped.
	runningSince *time.Time
	// used and calendarUsed are the time in closed stretches, measured by
	// the target's counter and by the calendar.
	used, calendarUsed time.Duration
}

// evaluate walks the stretches of a clock that counts with c towards target,
// with a warning lead time before it (zero for none).
func evaluate(segs []segment, c counter, target, lead time.Duration) (evaluation, error) {
	var ev evaluation
	warnAfter := target - lead
	hasWarning := lead > 0 && warnAfter > 0
	for _, seg := range segs {
		if ev.reached == nil {
			at, err := c.Add(seg.start, target-ev.used)
			if err != nil {
				return ev, err
			}
			ev.projected = &at
			if seg.open() || !at.After(seg.end) {
				ev.reached = &at
			}
		}
		if hasWarning && ev.warn == nil && ev.used < warnAfter {
			at, err := c.Add(seg.start, warnAfter-ev.used)
			if err != nil {
				return ev, err
			}
			if seg.open() || !at.After(seg.end) {
				ev.warn = &at
			}
		}
		if seg.open() {
			start := seg.start
			ev.runningSince = &start
			break
		}
		ev.used += c.Between(seg.start, seg.end)
		ev.calendarUsed += calendar{}.Between(seg.start, seg.end)
	}
	return ev, nil
}
