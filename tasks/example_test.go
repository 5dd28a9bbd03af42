package tasks_test

import (
	"fmt"
	"time"

	"github.com/outposthq/outpost/tasks"
)

func ExampleNewEventFanout() {
	t := tasks.NewEventFanout("evt_01jd5v8zq3f6n9w2k4m7r8t0yb")
	fmt.Println(t.Type())
	fmt.Println(string(t.Payload()))
	// Output:
	// event:fanout
	// {"eventId":"evt_01jd5v8zq3f6n9w2k4m7r8t0yb"}
}

func ExampleNewWebhookDelivery() {
	t := tasks.NewWebhookDelivery("dlv_01jd5v8zq3f6n9w2k4m7r8t0yb", 7, 45*time.Second)
	var p tasks.WebhookDeliveryPayload
	if err := tasks.Decode(t, &p); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Type(), p.DeliveryID)
	// Output:
	// webhook:deliver dlv_01jd5v8zq3f6n9w2k4m7r8t0yb
}
