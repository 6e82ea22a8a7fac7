// Command testexec is a small custom Mesos executor for localmesos' tests.
// It speaks the v1 executor HTTP API through mesos-go (protobuf codec) and
// behaves like the recorder's "recexec" of the reference transcripts:
//
//   - SUBSCRIBE at start (and again after a lost connection when the
//     framework checkpoints, replaying what was not acknowledged);
//   - LAUNCH: TASK_STARTING, then TASK_RUNNING; a task whose data is
//     "finish" then ends TASK_FINISHED, "fail" ends TASK_FAILED, and
//     "exit:N" makes the executor exit with code N at once;
//   - MESSAGE: a MESSAGE call with data "echo:" + data;
//   - KILL: TASK_KILLED ("killed on KILL event");
//   - SHUTDOWN: TASK_KILLED ("killed on SHUTDOWN event") for every task;
//   - once no task is left it waits (at most 2 s) for the agent's
//     ACKNOWLEDGED of all its updates, closes its stream and exits 0;
//   - SIGUSR1: one TASK_RUNNING ("sent on SIGUSR1") per live task.
//
// With the argument -example it behaves like mesos-go's example-executor
// instead (executor-happy-path.jsonl): every LAUNCH is answered with
// TASK_RUNNING then TASK_FINISHED, the executor never leaves by itself and
// exits as soon as it gets SHUTDOWN.
//
// It writes its environment to executor.env and every event type it gets
// to events.log in its sandbox, for tests to read.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// ackWait is how long the executor waits for the agent's acknowledgements
// before it exits.
const ackWait = 2 * time.Second

func main() {
	log.SetPrefix("testexec: ")
	log.SetFlags(log.Lmicroseconds)
	cfg, err := config.FromEnv()
	if err != nil {
		log.Fatalf("configuration: %v", err)
	}
	dumpEnv(cfg.Sandbox)
	e := newExecutor(cfg)
	for _, arg := range os.Args[1:] {
		if arg == "-example" {
			e.example = true
		}
	}
	os.Exit(e.run())
}

type testExecutor struct {
	cfg        config.Config
	example    bool // behave like mesos-go's example-executor
	cli        calls.Sender
	subscriber calls.Sender

	mu             sync.Mutex
	tasks          map[string]mesos.TaskInfo // live tasks
	unackedTasks   map[string]mesos.TaskInfo
	unackedUpdates map[string]executor.Call_Update
	order          []string // uuids of unacked updates, oldest first
	acked          chan struct{}
	stream         io.Closer
	leaving        bool // no task left: exit once acknowledged
	exitCode       int
	done           bool
}

func newExecutor(cfg config.Config) *testExecutor {
	endpoint := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	client := httpcli.New(
		httpcli.Endpoint(endpoint.String()),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))),
	)
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	return &testExecutor{
		cfg:            cfg,
		cli:            calls.SenderWith(httpexec.NewSender(client.Send), opts...),
		subscriber:     calls.SenderWith(httpexec.NewSender(client.Send, httpcli.Close(true)), opts...),
		tasks:          map[string]mesos.TaskInfo{},
		unackedTasks:   map[string]mesos.TaskInfo{},
		unackedUpdates: map[string]executor.Call_Update{},
		acked:          make(chan struct{}, 1),
	}
}

func (e *testExecutor) run() int {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			e.onSIGUSR1()
		}
	}()
	disconnected := time.Now()
	for attempt := 0; ; attempt++ {
		resp, err := e.subscriber.Send(context.Background(), calls.NonStreaming(e.subscribeCall()))
		if err == nil {
			attempt = 0
			e.mu.Lock()
			e.stream = resp
			e.mu.Unlock()
			err = e.eventLoop(resp)
			disconnected = time.Now()
		}
		if resp != nil {
			resp.Close()
		}
		e.mu.Lock()
		done, code := e.done, e.exitCode
		e.mu.Unlock()
		if done {
			log.Printf("exiting %d", code)
			return code
		}
		log.Printf("disconnected: %v", err)
		if !e.cfg.Checkpoint {
			log.Printf("exiting: framework checkpointing is not enabled")
			return 0
		}
		if time.Since(disconnected) > e.cfg.RecoveryTimeout {
			log.Printf("exiting: agent not back within %v", e.cfg.RecoveryTimeout)
			return 1
		}
		time.Sleep(backoff(attempt, e.cfg.SubscriptionBackoffMax))
	}
}

// backoff is recexec's: 0.5 s, 1 s, then 3/4 of the maximum.
func backoff(attempt int, max time.Duration) time.Duration {
	switch attempt {
	case 0:
		return 500 * time.Millisecond
	case 1:
		return time.Second
	}
	return max * 3 / 4
}

func (e *testExecutor) subscribeCall() *executor.Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	var tasks []mesos.TaskInfo
	for _, t := range e.unackedTasks {
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].TaskID.Value < tasks[j].TaskID.Value })
	var updates []executor.Call_Update
	for _, id := range e.order {
		updates = append(updates, e.unackedUpdates[id])
	}
	return calls.Subscribe(tasks, updates)
}

func (e *testExecutor) eventLoop(dec encoding.Decoder) error {
	for {
		var ev executor.Event
		if err := dec.Decode(&ev); err != nil {
			return err
		}
		e.record(ev.Type.String())
		if err := e.handle(&ev); err != nil {
			return err
		}
	}
}

func (e *testExecutor) handle(ev *executor.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev.Type {
	case executor.Event_SUBSCRIBED:
		log.Printf("subscribed to agent %s", ev.Subscribed.AgentInfo.GetID().GetValue())
	case executor.Event_LAUNCH:
		if e.example {
			e.update(ev.Launch.Task.TaskID, mesos.TASK_RUNNING, "")
			e.update(ev.Launch.Task.TaskID, mesos.TASK_FINISHED, "")
			break
		}
		e.launch(ev.Launch.Task)
	case executor.Event_LAUNCH_GROUP:
		for _, t := range ev.LaunchGroup.TaskGroup.Tasks {
			e.launch(t)
		}
	case executor.Event_KILL:
		if _, ok := e.tasks[ev.Kill.TaskID.Value]; ok {
			e.update(ev.Kill.TaskID, mesos.TASK_KILLED, "killed on KILL event")
			delete(e.tasks, ev.Kill.TaskID.Value)
			e.leaveIfIdle()
		}
	case executor.Event_MESSAGE:
		e.send(calls.Message(append([]byte("echo:"), ev.Message.Data...)))
	case executor.Event_SHUTDOWN:
		if e.example {
			e.done = true
			return errors.New("SHUTDOWN received")
		}
		for _, id := range e.taskIDs() {
			e.update(mesos.TaskID{Value: id}, mesos.TASK_KILLED, "killed on SHUTDOWN event")
			delete(e.tasks, id)
		}
		e.leaveIfIdle()
	case executor.Event_ACKNOWLEDGED:
		id := string(ev.Acknowledged.UUID)
		if _, ok := e.unackedUpdates[id]; ok {
			delete(e.unackedUpdates, id)
			for i, o := range e.order {
				if o == id {
					e.order = append(e.order[:i], e.order[i+1:]...)
					break
				}
			}
		}
		delete(e.unackedTasks, ev.Acknowledged.TaskID.Value)
		select {
		case e.acked <- struct{}{}:
		default:
		}
	case executor.Event_ERROR:
		return errors.New("ERROR from agent: " + ev.Error.Message)
	case executor.Event_HEARTBEAT:
	}
	return nil
}

// launch runs on the event loop with mu held.
func (e *testExecutor) launch(task mesos.TaskInfo) {
	e.tasks[task.TaskID.Value] = task
	e.unackedTasks[task.TaskID.Value] = task
	e.update(task.TaskID, mesos.TASK_STARTING, "")
	e.update(task.TaskID, mesos.TASK_RUNNING, "")
	data := string(task.Data)
	switch {
	case data == "finish":
		e.update(task.TaskID, mesos.TASK_FINISHED, "finished as asked")
		delete(e.tasks, task.TaskID.Value)
		e.leaveIfIdle()
	case data == "fail":
		e.update(task.TaskID, mesos.TASK_FAILED, "failed as asked")
		delete(e.tasks, task.TaskID.Value)
		e.leaveIfIdle()
	case strings.HasPrefix(data, "exit:"):
		code, _ := strconv.Atoi(strings.TrimPrefix(data, "exit:"))
		log.Printf("exiting %d as asked", code)
		os.Exit(code)
	}
}

func (e *testExecutor) leaveIfIdle() {
	if len(e.tasks) == 0 && !e.leaving {
		e.leaving = true
		go e.exitOnceAcknowledged()
	}
}

// exitOnceAcknowledged waits (at most ackWait) for the agent to
// acknowledge every update, then ends the subscription.
func (e *testExecutor) exitOnceAcknowledged() {
	deadline := time.NewTimer(ackWait)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		n := len(e.unackedUpdates)
		e.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-e.acked:
		case <-deadline.C:
			log.Printf("%d update(s) still unacknowledged after %v", n, ackWait)
			e.finish()
			return
		}
	}
	e.finish()
}

func (e *testExecutor) finish() {
	e.mu.Lock()
	e.done = true
	stream := e.stream
	e.mu.Unlock()
	if stream != nil {
		stream.Close()
	}
}

func (e *testExecutor) onSIGUSR1() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.taskIDs() {
		e.update(mesos.TaskID{Value: id}, mesos.TASK_RUNNING, "sent on SIGUSR1")
	}
}

func (e *testExecutor) taskIDs() []string {
	ids := make([]string, 0, len(e.tasks))
	for id := range e.tasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// update sends a status update with mu held. It counts as unacknowledged
// from now on, even if the call fails.
func (e *testExecutor) update(taskID mesos.TaskID, state mesos.TaskState, message string) {
	src := mesos.SOURCE_EXECUTOR
	execID := mesos.ExecutorID{Value: e.cfg.ExecutorID}
	status := mesos.TaskStatus{
		TaskID:     taskID,
		State:      &state,
		Source:     &src,
		ExecutorID: &execID,
		UUID:       newUUID(),
	}
	if message != "" {
		status.Message = &message
	}
	call := calls.Update(status)
	id := string(status.UUID)
	e.unackedUpdates[id] = *call.Update
	e.order = append(e.order, id)
	e.send(call)
}

func (e *testExecutor) send(call *executor.Call) {
	resp, err := e.cli.Send(context.Background(), calls.NonStreaming(call))
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		log.Printf("%s call failed: %v", call.Type, err)
	}
}

// record appends an event type to events.log in the sandbox.
func (e *testExecutor) record(event string) {
	f, err := os.OpenFile(filepath.Join(e.cfg.Sandbox, "events.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, event)
}

func dumpEnv(sandbox string) {
	env := os.Environ()
	sort.Strings(env)
	if err := os.WriteFile(filepath.Join(sandbox, "executor.env"), []byte(strings.Join(env, "\n")+"\n"), 0o644); err != nil {
		log.Printf("writing executor.env: %v", err)
	}
}

func newUUID() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		log.Fatalf("uuid: %v", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}
