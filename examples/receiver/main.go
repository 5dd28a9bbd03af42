// Command receiver is a minimal Outpost webhook receiver. It verifies the
// X-Outpost-Signature header of every delivery with the standard library
// only, rejects stale or forged requests, and prints each event.
//
//	OUTPOST_WEBHOOK_SECRET=whsec_... go run ./examples/receiver -addr 127.0.0.1:9000
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// tolerance is how far a signature's timestamp may be from the receiver's
// clock; older deliveries are rejected as possible replays.
const tolerance = 5 * time.Minute

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	secret := os.Getenv("OUTPOST_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set OUTPOST_WEBHOOK_SECRET to the secret that POST /api/webhooks returned")
	}

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := verify(r.Header.Get("X-Outpost-Signature"), body, secret, time.Now()); err != nil {
			log.Printf("rejected delivery %s: %v", r.Header.Get("X-Outpost-Delivery-Id"), err)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("%s %s %s\n", r.Header.Get("X-Outpost-Event"), r.Header.Get("X-Outpost-Event-Id"), body)
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("listening on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// verify checks a header of the form "t=<unix seconds>,v1=<hex>[,v1=<hex>]":
// one v1 entry must equal the hex HMAC-SHA256 of "<t>.<body>" keyed by the
// secret string.
func verify(header string, body []byte, secret string, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("missing or invalid t= timestamp")
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("timestamp is %s off the local clock", age.Round(time.Second))
	}

	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no v1 signature matches")
}
