package sla

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/models"
)

// Limits of a business-hours schedule, which keep one computation cheap.
const (
	maxIntervals = 70
	maxHolidays  = 1000
)

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// Compile validates a stored or requested schedule and returns its
// arithmetic form. Its errors are FieldErrors that name the request field
// under body.
func Compile(bh models.BusinessHours) (*Schedule, error) {
	loc, err := loadZone(bh.TimeZone)
	if err != nil {
		return nil, err
	}
	s := &Schedule{Location: loc, Holidays: map[Date]bool{}}

	if len(bh.Hours) == 0 {
		return nil, outpost.Invalid("body.hours", bh.Hours, "list at least one opening interval; a schedule that never opens cannot count business time")
	}
	if len(bh.Hours) > maxIntervals {
		return nil, outpost.Invalid("body.hours", len(bh.Hours), "list at most %d opening intervals", maxIntervals)
	}
	for i, h := range bh.Hours {
		field := fmt.Sprintf("body.hours[%d]", i)
		day, ok := weekdays[h.Weekday]
		if !ok {
			return nil, outpost.Invalid(field+".weekday", h.Weekday, "unknown weekday; use monday to sunday in lower case")
		}
		start, err := parseClock(field+".start", h.Start, false)
		if err != nil {
			return nil, err
		}
		end, err := parseClock(field+".end", h.End, true)
		if err != nil {
			return nil, err
		}
		if end <= start {
			return nil, outpost.Invalid(field+".end", h.End, "end must be after start (%s); split an overnight shift into two intervals, one ending at 24:00 and one starting at 00:00", h.Start)
		}
		s.Week[day] = append(s.Week[day], Interval{Start: start, End: end})
	}
	for day, ivs := range s.Week {
		slices.SortFunc(ivs, func(a, b Interval) int { return a.Start - b.Start })
		for j := 1; j < len(ivs); j++ {
			if ivs[j].Start < ivs[j-1].End {
				return nil, outpost.Invalid("body.hours", bh.Hours, "opening intervals on %s overlap (%s-%s and %s-%s); merge them",
					strings.ToLower(time.Weekday(day).String()),
					formatClock(ivs[j-1].Start), formatClock(ivs[j-1].End), formatClock(ivs[j].Start), formatClock(ivs[j].End))
			}
		}
	}

	if len(bh.Holidays) > maxHolidays {
		return nil, outpost.Invalid("body.holidays", len(bh.Holidays), "list at most %d holidays", maxHolidays)
	}
	for i, h := range bh.Holidays {
		d, err := time.Parse(time.DateOnly, h.Date)
		if err != nil {
			return nil, outpost.Invalid(fmt.Sprintf("body.holidays[%d].date", i), h.Date, "invalid date; use YYYY-MM-DD")
		}
		s.Holidays[Date{d.Year(), d.Month(), d.Day()}] = true
	}
	return s, nil
}

// loadZone loads an IANA time zone. It rejects the empty name and "Local",
// which time.LoadLocation accepts but which depend on the server.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, outpost.Invalid("body.timeZone", name, "set an IANA time zone such as Europe/Berlin or America/New_York")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, outpost.Invalid("body.timeZone", name, "unknown IANA time zone; use a name such as Europe/Berlin or America/New_York")
	}
	return loc, nil
}

// parseClock parses HH:MM into minutes after midnight. 24:00 is accepted
// only as an end.
func parseClock(field, v string, isEnd bool) (int, error) {
	hh, mm, ok := strings.Cut(v, ":")
	h, errH := strconv.Atoi(hh)
	m, errM := strconv.Atoi(mm)
	if !ok || len(hh) != 2 || len(mm) != 2 || errH != nil || errM != nil || h < 0 || m < 0 || m > 59 || h > 24 {
		return 0, outpost.Invalid(field, v, "invalid time; use HH:MM from 00:00 to 24:00")
	}
	minutes := h*60 + m
	if minutes > 24*60 {
		return 0, outpost.Invalid(field, v, "invalid time; use HH:MM from 00:00 to 24:00")
	}
	if minutes == 24*60 && !isEnd {
		return 0, outpost.Invalid(field, v, "an interval cannot start at 24:00; start the next day at 00:00")
	}
	return minutes, nil
}

func formatClock(minutes int) string {
	return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}
