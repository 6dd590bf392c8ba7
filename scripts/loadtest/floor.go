package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

// floor is the HMAC-only server hookgate is compared with: a bare net/http handler that
// reads the body through a size-limited reader, checks X-Hub-Signature-256 in constant
// time and answers 202. It records nothing, so it is the most any webhook receiver written
// in Go could answer on this machine. It runs in its own process, like hookgate.
func floor(args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8079", "address to listen on")
	secretEnv := fs.String("secret-env", "FLOOR_SECRET", "environment variable holding the webhook secret")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	secret := []byte(os.Getenv(*secretEnv))
	if len(secret) == 0 {
		fmt.Fprintf(os.Stderr, "floor: %s is empty\n", *secretEnv)
		return 2
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("POST /hooks/{name}", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if r.ContentLength > 0 {
			buf.Grow(int(r.ContentLength))
		}
		if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 25<<20)); err != nil {
			http.Error(w, `{"error":"body"}`, http.StatusRequestEntityTooLarge)
			return
		}
		sig, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
		got, err := hex.DecodeString(sig)
		if !ok || err != nil {
			http.Error(w, `{"error":"signature"}`, http.StatusUnauthorized)
			return
		}
		m := hmac.New(sha256.New, secret)
		m.Write(buf.Bytes())
		if !hmac.Equal(got, m.Sum(nil)) {
			http.Error(w, `{"error":"signature"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"accepted"}`)
	})
	hs := &http.Server{
		Addr: *listen, Handler: mux,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
	}
	log.Fatal(hs.ListenAndServe())
	return 0
}
