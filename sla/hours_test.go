package sla

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/models"
)

func mustCompile(t *testing.T, zone string, hours []models.OpeningHours, holidays ...string) *Schedule {
	t.Helper()
	bh := models.BusinessHours{TimeZone: zone, Hours: hours}
	for _, d := range holidays {
		bh.Holidays = append(bh.Holidays, models.Holiday{Date: d})
	}
	s, err := Compile(bh)
	require.NoError(t, err)
	return s
}

func every(start, end string, days ...string) []models.OpeningHours {
	var out []models.OpeningHours
	for _, d := range days {
		out = append(out, models.OpeningHours{Weekday: d, Start: start, End: end})
	}
	return out
}

var weekdayNames = []string{"monday", "tuesday", "wednesday", "thursday", "friday"}

// utc parses an RFC 3339 instant. The table cases state instants in UTC so
// that no local time is ambiguous.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v.UTC()
}

func TestWallInstant(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)

	cases := []struct {
		name   string
		loc    *time.Location
		date   Date
		minute int
		want   string
	}{
		{"ny ordinary", ny, Date{2026, 3, 9}, 9 * 60, "2026-03-09T13:00:00Z"},
		{"ny before spring jump", ny, Date{2026, 3, 8}, 60 + 59, "2026-03-08T06:59:00Z"},
		{"ny in spring gap", ny, Date{2026, 3, 8}, 2*60 + 30, "2026-03-08T07:00:00Z"},
		{"ny after spring jump", ny, Date{2026, 3, 8}, 3 * 60, "2026-03-08T07:00:00Z"},
		{"ny fall repeated hour", ny, Date{2026, 11, 1}, 60 + 30, "2026-11-01T05:30:00Z"},
		{"ny fall after repeat", ny, Date{2026, 11, 1}, 2 * 60, "2026-11-01T07:00:00Z"},
		{"ny midnight end of day", ny, Date{2026, 3, 7}, 24 * 60, "2026-03-08T05:00:00Z"},
		{"berlin in spring gap", berlin, Date{2026, 3, 29}, 2*60 + 15, "2026-03-29T01:00:00Z"},
		{"berlin fall repeated hour", berlin, Date{2026, 10, 25}, 2*60 + 30, "2026-10-25T00:30:00Z"},
		{"utc", time.UTC, Date{2026, 1, 1}, 90, "2026-01-01T01:30:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, utc(t, c.want), wallInstant(c.date, c.minute, c.loc).UTC())
		})
	}
}

func TestScheduleAdd(t *testing.T) {
	office := mustCompile(t, "Europe/Berlin", every("09:00", "17:00", weekdayNames...))
	// Memorial Day, Monday 2026-05-25, is a holiday.
	nyOffice := mustCompile(t, "America/New_York", every("09:00", "17:00", weekdayNames...), "2026-05-25")
	// Sunday windows that contain the 2026 daylight-saving changes.
	nySunday := mustCompile(t, "America/New_York", every("00:00", "06:00", "sunday"))
	nyGap := mustCompile(t, "America/New_York", every("02:30", "05:00", "sunday"))
	berlinSunday := mustCompile(t, "Europe/Berlin", every("00:00", "08:00", "sunday"))
	// A night shift: 22:00 to 06:00, Monday night to Saturday morning.
	night := mustCompile(t, "UTC", append(
		every("22:00", "24:00", weekdayNames...),
		every("00:00", "06:00", "tuesday", "wednesday", "thursday", "friday", "saturday")...))

	cases := []struct {
		name     string
		schedule *Schedule
		from     string
		minutes  int
		want     string
	}{
		{"inside window", office, "2026-03-02T09:00:00Z", 60, "2026-03-02T10:00:00Z"}, // Mon 10:00 CET
		{"ends at close", office, "2026-03-02T15:00:00Z", 60, "2026-03-02T16:00:00Z"},
		{"crosses night", office, "2026-03-02T15:30:00Z", 60, "2026-03-03T08:30:00Z"},
		{"before opening starts at opening", office, "2026-03-02T05:00:00Z", 30, "2026-03-02T08:30:00Z"},
		{"zero inside window", office, "2026-03-02T10:00:00Z", 0, "2026-03-02T10:00:00Z"},
		{"zero at close is next opening", office, "2026-03-02T16:00:00Z", 0, "2026-03-03T08:00:00Z"},
		{"friday evening to monday", office, "2026-03-06T17:00:00Z", 60, "2026-03-09T09:00:00Z"},
		{"spans a week", office, "2026-03-02T08:00:00Z", 5 * 8 * 60, "2026-03-06T16:00:00Z"},
		{"berlin weekday after spring change", office, "2026-03-30T06:00:00Z", 60, "2026-03-30T08:00:00Z"}, // 09:00 CEST = 07:00Z
		{"friday evening with monday holiday", nyOffice, "2026-05-22T23:00:00Z", 60, "2026-05-26T14:00:00Z"},
		{"friday afternoon with monday holiday", nyOffice, "2026-05-22T20:00:00Z", 120, "2026-05-26T14:00:00Z"},
		{"ny spring inside window", nySunday, "2026-03-08T05:00:00Z", 150, "2026-03-08T07:30:00Z"},
		{"ny spring whole window", nySunday, "2026-03-08T05:00:00Z", 5 * 60, "2026-03-08T10:00:00Z"},
		{"ny spring past window", nySunday, "2026-03-08T05:00:00Z", 5*60 + 1, "2026-03-15T04:01:00Z"},
		{"ny spring from before jump", nySunday, "2026-03-08T06:30:00Z", 60, "2026-03-08T07:30:00Z"},
		{"ny opening in gap", nyGap, "2026-03-08T05:00:00Z", 0, "2026-03-08T07:00:00Z"},
		{"ny gap window length", nyGap, "2026-03-08T05:00:00Z", 120, "2026-03-08T09:00:00Z"},
		{"ny fall first hour", nySunday, "2026-11-01T04:00:00Z", 120, "2026-11-01T06:00:00Z"},
		{"ny fall whole window", nySunday, "2026-11-01T04:00:00Z", 7 * 60, "2026-11-01T11:00:00Z"},
		{"ny fall from repeated hour", nySunday, "2026-11-01T06:15:00Z", 60, "2026-11-01T07:15:00Z"},
		{"berlin spring whole window", berlinSunday, "2026-03-28T23:00:00Z", 7 * 60, "2026-03-29T06:00:00Z"},
		{"berlin spring across jump", berlinSunday, "2026-03-29T00:30:00Z", 60, "2026-03-29T01:30:00Z"},
		{"berlin fall whole window", berlinSunday, "2026-10-24T22:00:00Z", 9 * 60, "2026-10-25T07:00:00Z"},
		{"berlin fall across repeat", berlinSunday, "2026-10-25T00:30:00Z", 60, "2026-10-25T01:30:00Z"},
		{"night shift across midnight", night, "2026-03-02T23:00:00Z", 120, "2026-03-03T01:00:00Z"},
		{"night shift from day", night, "2026-03-03T12:00:00Z", 60, "2026-03-03T23:00:00Z"},
		{"night shift friday to monday", night, "2026-03-07T05:00:00Z", 120, "2026-03-09T23:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := utc(t, c.from)
			got, err := c.schedule.Add(from, time.Duration(c.minutes)*time.Minute)
			require.NoError(t, err)
			require.Equal(t, utc(t, c.want), got.UTC())
			// Between is the inverse of Add.
			require.Equal(t, time.Duration(c.minutes)*time.Minute, c.schedule.Between(from, got))
		})
	}
}

func TestScheduleBetween(t *testing.T) {
	office := mustCompile(t, "Europe/Berlin", every("09:00", "17:00", weekdayNames...))
	nyOffice := mustCompile(t, "America/New_York", every("09:00", "17:00", weekdayNames...), "2026-05-25")
	nySunday := mustCompile(t, "America/New_York", every("00:00", "06:00", "sunday"))
	berlinSunday := mustCompile(t, "Europe/Berlin", every("00:00", "08:00", "sunday"))

	cases := []struct {
		name     string
		schedule *Schedule
		from, to string
		want     time.Duration
	}{
		{"empty range", office, "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z", 0},
		{"reversed range", office, "2026-03-02T12:00:00Z", "2026-03-02T10:00:00Z", 0},
		{"inside window", office, "2026-03-02T09:00:00Z", "2026-03-02T09:45:30Z", 45*time.Minute + 30*time.Second},
		{"overnight gap", office, "2026-03-02T15:00:00Z", "2026-03-03T09:00:00Z", 2 * time.Hour},
		{"weekend", office, "2026-03-06T12:00:00Z", "2026-03-09T12:00:00Z", 8 * time.Hour},
		{"closed range", office, "2026-03-07T08:00:00Z", "2026-03-08T20:00:00Z", 0},
		{"holiday weekend", nyOffice, "2026-05-22T23:00:00Z", "2026-05-26T14:00:00Z", time.Hour},
		{"ny spring day", nySunday, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", 5 * time.Hour},
		{"ny fall day", nySunday, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", 7 * time.Hour},
		{"ny ordinary sunday", nySunday, "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z", 6 * time.Hour},
		{"berlin spring day", berlinSunday, "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z", 7 * time.Hour},
		{"berlin fall day", berlinSunday, "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z", 9 * time.Hour},
		{"berlin fall repeated hour only", berlinSunday, "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.schedule.Between(utc(t, c.from), utc(t, c.to)))
		})
	}
}

func TestScheduleNextOpening(t *testing.T) {
	office := mustCompile(t, "America/New_York", every("09:00", "17:00", weekdayNames...), "2026-05-25")
	got, err := office.NextOpening(utc(t, "2026-05-22T23:00:00Z"))
	require.NoError(t, err)
	require.Equal(t, utc(t, "2026-05-26T13:00:00Z"), got.UTC(), "Friday evening opens Tuesday after the Monday holiday")

	got, err = office.NextOpening(utc(t, "2026-05-26T15:00:00Z"))
	require.NoError(t, err)
	require.Equal(t, utc(t, "2026-05-26T15:00:00Z"), got.UTC(), "an open schedule opens now")
}

func TestScheduleRoundTripAcrossDST(t *testing.T) {
	// Start times 17 minutes apart across both New York changes: Add and
	// Between agree and never count time that did not pass.
	s := mustCompile(t, "America/New_York", every("00:00", "24:00", "saturday", "sunday"))
	for _, day := range []string{"2026-03-07T00:00:00Z", "2026-10-31T00:00:00Z"} {
		start := utc(t, day)
		for offset := time.Duration(0); offset < 48*time.Hour; offset += 17 * time.Minute {
			from := start.Add(offset)
			for _, d := range []time.Duration{0, time.Minute, 90 * time.Minute, 5 * time.Hour} {
				got, err := s.Add(from, d)
				require.NoError(t, err)
				require.Equal(t, d, s.Between(from, got), "from %s plus %s", from, d)
				require.False(t, got.Before(from))
			}
		}
	}
}

func TestScheduleNoOpeningWithinHorizon(t *testing.T) {
	// Built by hand, because Compile caps holidays: every Monday for 21
	// years is a holiday, so the Monday-only schedule never opens.
	s := &Schedule{Location: time.UTC, Holidays: map[Date]bool{}}
	s.Week[time.Monday] = []Interval{{Start: 540, End: 1020}}
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for d := monday; d.Year() < 2048; d = d.AddDate(0, 0, 7) {
		s.Holidays[Date{d.Year(), d.Month(), d.Day()}] = true
	}
	_, err := s.Add(monday, time.Minute)
	require.ErrorIs(t, err, ErrNoOpening)
}

func TestCompileRejects(t *testing.T) {
	ok := every("09:00", "17:00", "monday")
	cases := []struct {
		name  string
		bh    models.BusinessHours
		field string
	}{
		{"no hours", models.BusinessHours{TimeZone: "UTC"}, "body.hours"},
		{"empty zone", models.BusinessHours{Hours: ok}, "body.timeZone"},
		{"local zone", models.BusinessHours{TimeZone: "Local", Hours: ok}, "body.timeZone"},
		{"unknown zone", models.BusinessHours{TimeZone: "Mars/Olympus", Hours: ok}, "body.timeZone"},
		{"bad weekday", models.BusinessHours{TimeZone: "UTC", Hours: every("09:00", "17:00", "funday")}, "body.hours[0].weekday"},
		{"bad start", models.BusinessHours{TimeZone: "UTC", Hours: every("9:00", "17:00", "monday")}, "body.hours[0].start"},
		{"minute out of range", models.BusinessHours{TimeZone: "UTC", Hours: every("09:60", "17:00", "monday")}, "body.hours[0].start"},
		{"past midnight", models.BusinessHours{TimeZone: "UTC", Hours: every("09:00", "24:01", "monday")}, "body.hours[0].end"},
		{"start at 24:00", models.BusinessHours{TimeZone: "UTC", Hours: every("24:00", "24:00", "monday")}, "body.hours[0].start"},
		{"end before start", models.BusinessHours{TimeZone: "UTC", Hours: every("22:00", "06:00", "monday")}, "body.hours[0].end"},
		{"empty interval", models.BusinessHours{TimeZone: "UTC", Hours: every("09:00", "09:00", "monday")}, "body.hours[0].end"},
		{"overlap", models.BusinessHours{TimeZone: "UTC", Hours: append(every("09:00", "12:00", "monday"), every("11:00", "17:00", "monday")...)}, "body.hours"},
		{"bad holiday", models.BusinessHours{TimeZone: "UTC", Hours: ok, Holidays: []models.Holiday{{Date: "2026-02-30"}}}, "body.holidays[0].date"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.bh)
			var fe *outpost.FieldError
			require.True(t, errors.As(err, &fe), "got %v", err)
			require.Equal(t, c.field, fe.Field)
		})
	}
}

func TestCompileAcceptsAdjacentIntervals(t *testing.T) {
	s := mustCompile(t, "UTC", append(every("09:00", "12:00", "monday"), every("12:00", "17:00", "monday")...))
	monday := utc(t, "2026-03-02T11:00:00Z")
	got, err := s.Add(monday, 2*time.Hour)
	require.NoError(t, err)
	require.Equal(t, utc(t, "2026-03-02T13:00:00Z"), got.UTC())
}
