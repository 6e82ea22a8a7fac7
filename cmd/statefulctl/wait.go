package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
)

const (
	defaultWaitTimeout = 2 * time.Minute
	// defaultInterval is short enough to see a DEGRADED that lasts a
	// health interval or two.
	defaultInterval = 500 * time.Millisecond
)

// reached reports whether inst has status want; RUNNING also needs every
// expected task running and healthy, since the status alone does not say
// the workload answers, and no task still waiting to be replaced (a
// replace leaves the status RUNNING while the old attempt still runs).
func reached(inst *stateful.Instance, want stateful.InstanceStatus) bool {
	if inst.Status != want {
		return false
	}
	if want != stateful.StatusRunning {
		return true
	}
	if len(inst.Tasks) != inst.TaskCount() {
		return false
	}
	for _, t := range inst.Tasks {
		if t.State != stateful.TaskRunning || !t.Healthy || t.Replace {
			return false
		}
	}
	return true
}

// waitStatus polls the instance until it has status want, printing a
// line whenever what it shows changes.
func (a *app) waitStatus(ctx context.Context, name string, want stateful.InstanceStatus, timeout, interval time.Duration) error {
	return a.poll(ctx, name, "to be "+string(want), timeout, interval, func(inst *stateful.Instance, err error) (bool, error) {
		if err != nil {
			return false, err
		}
		if inst.Status == stateful.StatusDeleting && want != stateful.StatusDeleting {
			// A destroy is never undone.
			return false, fmt.Errorf("%s is being deleted; it will not be %s", name, want)
		}
		return reached(inst, want), nil
	})
}

// waitGone polls a deleted instance until the API no longer knows it.
func (a *app) waitGone(ctx context.Context, name string, timeout, interval time.Duration) error {
	err := a.poll(ctx, name, "to be gone", timeout, interval, func(_ *stateful.Instance, err error) (bool, error) {
		if client.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err == nil {
		fmt.Fprintf(a.stdout, "%s deleted\n", name)
	}
	return err
}

// poll gets the instance every interval and hands the answer to done
// until it reports true or an error, or timeout passes. Answers that may
// pass (no connection, 5xx: a scheduler restarting or electing a leader)
// are shown and polled through; done sees only the others.
func (a *app) poll(ctx context.Context, name, what string, timeout, interval time.Duration, done func(*stateful.Instance, error) (bool, error)) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	show := func(line string) {
		if line != last {
			fmt.Fprintf(a.stdout, "%s %s %s\n", time.Now().Format(time.TimeOnly), name, line)
			last = line
		}
	}
	for {
		inst, err := a.get(wctx, name)
		if wctx.Err() != nil {
			break
		}
		if err != nil && transient(err) {
			show("no answer: " + err.Error())
		} else {
			if inst != nil {
				show(summary(inst))
			}
			ok, err := done(inst, err)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
		select {
		case <-wctx.Done():
		case <-time.After(interval):
		}
		if wctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted waiting for %s %s; last: %s", name, what, last)
	}
	if last == "" {
		last = "no answer"
	}
	return fmt.Errorf("gave up waiting for %s %s after %v; last: %s", name, what, timeout, last)
}

// transient reports whether a failed GET may succeed if tried again.
func transient(err error) bool {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= http.StatusInternalServerError
	}
	return true // no answer at all
}
