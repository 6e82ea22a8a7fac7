package httplib

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/mesos-stateful/stateful"
	"github.com/prometheus/client_golang/prometheus"
)

var createSeeds = []string{
	`{"name": "cache2", "type": "MS", "masters": 1, "slaves": 2}`,
	`{"name": "s1", "type": "S"}`,
	`{"name": "ring2", "type": "C", "masters": 3, "spec": {"cpu": 2, "mem": 1024, "image": "redis:6", "network": "bridge",
	  "env": {"X": "y"}, "health": {"command": "redis-cli ping", "interval_s": 2}}}`,
	`{"name": "p", "type": "S", "spec": {"ports": ["a", "b"], "health": {"tcp": "b", "timeout_s": 20}, "volume": "/v/"}}`,
	`{"name": "x", "type": "MS", "slaves": 1.5}`,
	`{"name": "x", "type": "MS", "spec": {"cpu": 1e999, "mem": -0}}`,
	`{"name": "x", "type": "S", "name": "y"}`,
	`{"Name": "x", "type": "S"}`,
	`{"name": "x", "type": "S"} xyz`,
	`{"name": "x", "type": "S", "spec": {"env": {"A": [[[[[]]]]]}}}`,
	`{"name": "\u0063ache", "type": "S", "spec": null}`,
	`null`, `[]`, `""`, `{`, ``,
}

var patchSeeds = []string{
	`{"slaves": 4}`,
	`{"slaves": 0}`,
	`{"spec": {"mem": 512, "image": "redis:7.2"}}`,
	`{"spec": {"env": null, "cpu": null, "health": null}}`,
	`{"spec": {"health": {"command": "redis-cli ping"}}}`,
	`{"name": "cache1", "type": "MS", "masters": 1, "slaves": 3}`,
	`{"type": "C", "slaves": 3}`,
	`{"masters": 2}`,
	`{"spec": {"ports": ["a"]}}`,
	`{"spec": {}}`,
	`{"slaves": null}`,
	`{}`, `{"slaves": 3}]`, `{"status": "RUNNING"}`,
}

// FuzzCreateRequest: decoding never panics; every rejection is a 400 naming
// what is wrong; every accepted request is a valid instance, and encoding it
// back gives a request that decodes to the same instance.
func FuzzCreateRequest(f *testing.F) {
	for _, s := range createSeeds {
		f.Add([]byte(s))
	}
	svc := newMemService()
	s, err := New(NewConfig(), svc, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	defaults := svc.Defaults()
	f.Fuzz(func(t *testing.T, body []byte) {
		inst, err := decodeCreate(body, defaults)
		if err != nil {
			if ve, ok := stateful.AsValidationError(err); !ok || ve.Msg == "" {
				t.Fatalf("rejection %v (%T) is not a validation error with a message", err, err)
			}
		} else {
			if err := inst.Validate(); err != nil {
				t.Fatalf("accepted an invalid instance: %v\n%s", err, body)
			}
			again, err := decodeCreate(createBody(t, inst), defaults)
			if err != nil {
				t.Fatalf("the accepted instance, sent back, is rejected: %v", err)
			}
			if !reflect.DeepEqual(again, inst) {
				t.Fatalf("round trip changed the instance:\n%+v\n%+v", inst, again)
			}
		}

		svc.mu.Lock()
		svc.instances = map[string]*stateful.Instance{}
		svc.mu.Unlock()
		rec := do(s.Handler(), "POST", "/v1/instances", "application/json", bytes.NewReader(body))
		want := http.StatusAccepted
		if err != nil {
			want = http.StatusBadRequest
		}
		if rec.Code != want {
			t.Fatalf("handler answered %d %s, decoding says %d", rec.Code, rec.Body, want)
		}
	})
}

func createBody(t *testing.T, inst *stateful.Instance) []byte {
	b, err := json.Marshal(map[string]any{
		"name": inst.Name, "type": inst.Type, "masters": inst.Masters, "slaves": inst.Slaves, "spec": inst.Spec,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzPatchRequest: against an S, MS or C instance, decoding never panics,
// every rejection is a 400 naming what is wrong, and every accepted patch
// changes something, keeps name, type and masters, and yields a valid
// instance.
func FuzzPatchRequest(f *testing.F) {
	for _, s := range patchSeeds {
		for kind := range uint8(3) {
			f.Add([]byte(s), kind)
		}
	}
	defaults := redisDefaults()
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		current := fixtures()[kind%3]
		patch, err := decodePatchFor(body, current, defaults)
		if err != nil {
			if ve, ok := stateful.AsValidationError(err); !ok || ve.Msg == "" {
				t.Fatalf("rejection %v (%T) is not a validation error with a message", err, err)
			}
		} else {
			if patch.Generation != current.Generation {
				t.Fatalf("patch generation %d, instance %d", patch.Generation, current.Generation)
			}
			if patch.Slaves == nil && patch.Spec == nil {
				t.Fatalf("accepted an empty patch: %s", body)
			}
			if patch.Slaves != nil && *patch.Slaves == current.Slaves {
				t.Fatalf("patch sets slaves to the current %d", current.Slaves)
			}
			if patch.Spec != nil && specEqual(*patch.Spec, current.Spec) {
				t.Fatalf("patch sets the current spec")
			}
			next := patch.Apply(current)
			if next.Name != current.Name || next.Type != current.Type || next.Masters != current.Masters {
				t.Fatalf("patch changed the identity: %s %s %d", next.Name, next.Type, next.Masters)
			}
			if err := next.Validate(); err != nil {
				t.Fatalf("accepted a patch that makes the instance invalid: %v\n%s", err, body)
			}
		}

		svc := seeded()
		s, serr := New(NewConfig(), svc, prometheus.NewRegistry())
		if serr != nil {
			t.Fatal(serr)
		}
		rec := do(s.Handler(), "PATCH", "/v1/instances/"+current.Name, "application/json", bytes.NewReader(body))
		want := http.StatusAccepted
		if err != nil {
			want = http.StatusBadRequest
		}
		if rec.Code != want {
			t.Fatalf("handler answered %d %s, decoding says %d", rec.Code, rec.Body, want)
		}
	})
}

// decodePatchFor is what the PATCH handler does between reading the body
// and calling Update.
func decodePatchFor(body []byte, current *stateful.Instance, defaults stateful.Spec) (Patch, error) {
	req, err := parsePatch(body, current.Name)
	if err != nil {
		return Patch{}, err
	}
	if current.Status == stateful.StatusDeleting {
		return Patch{}, fmt.Errorf("deleting")
	}
	return buildPatch(req, current, defaults)
}
