package tasks_test

import (
	"fmt"
	"time"

	"github.com/outposthq/outpost/tasks"
)

func ExampleSLATaskID() {
	due := time.Date(2030, 6, 3, 12, 15, 0, 0, time.UTC)
	fmt.Println(tasks.SLATaskID(tasks.TypeSLABreach, "tkt_01jd5v8zq3f6n9w2k4m7r8t0yb", "first_response", due))
	// Output:
	// sla:breach:tkt_01jd5v8zq3f6n9w2k4m7r8t0yb:first_response:1906719300000000
}

func ExampleNewSLABreach() {
	due := time.Date(2030, 6, 3, 12, 15, 0, 0, time.UTC)
	t := tasks.NewSLABreach("tkt_01jd5v8zq3f6n9w2k4m7r8t0yb", "first_response", due)
	var p tasks.SLACheckPayload
	if err := tasks.Decode(t, &p); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Type(), p.TicketID, p.Metric, p.At.Format(time.RFC3339))
	// Output:
	// sla:breach tkt_01jd5v8zq3f6n9w2k4m7r8t0yb first_response 2030-06-03T12:15:00Z
}
