package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message types, the "type" field of every framework message.
const (
	// TypeExec asks the executor to run a command inside a task
	// (scheduler → executor).
	TypeExec = "exec"
	// TypeExecResult answers an exec (executor → scheduler).
	TypeExecResult = "exec_result"
	// TypeStats reports a task's resource use and workload figures
	// (executor → scheduler, periodic).
	TypeStats = "stats"
	// TypeError answers a message the executor could not act on
	// (executor → scheduler).
	TypeError = "error"
	// TypeSetRole tells the executor the role its task holds now, after a
	// promotion (scheduler → executor, unanswered: a stats report carries
	// the role the executor believes, and the scheduler sends it again
	// while that differs).
	TypeSetRole = "set_role"
)

// Limits on messages.
const (
	// MaxMessageSize bounds a framework message either way.
	MaxMessageSize = 1 << 20
	// MaxExecOutput bounds each of stdout and stderr in an ExecResult.
	MaxExecOutput = 64 << 10
	// DefaultExecTimeout applies when an Exec names no timeout.
	DefaultExecTimeout = 30 * time.Second
	// MaxExecTimeout is the longest timeout an Exec may ask for.
	MaxExecTimeout = 10 * time.Minute
	maxIDLen       = 256
)

// Message is one of *Exec, *ExecResult, *Stats, *ErrorReply or *SetRole.
type Message interface {
	MessageType() string
}

// Exec asks the executor to run Cmd inside task TaskID: with docker exec in
// a container, or with the task's environment and working directory for a
// process task. ID is the caller's, echoed in the ExecResult.
type Exec struct {
	ID     string   `json:"id"`
	TaskID string   `json:"task_id"`
	Cmd    []string `json:"cmd"`
	// TimeoutSeconds bounds the command; 0 means DefaultExecTimeout.
	TimeoutSeconds float64 `json:"timeout_s,omitempty"`
}

// MessageType implements Message.
func (*Exec) MessageType() string { return TypeExec }

// Timeout returns the command's time limit.
func (m *Exec) Timeout() time.Duration {
	if m.TimeoutSeconds <= 0 {
		return DefaultExecTimeout
	}
	return time.Duration(m.TimeoutSeconds * float64(time.Second))
}

// Validate explains the first value that cannot work.
func (m *Exec) Validate() error {
	switch {
	case m.ID == "" || len(m.ID) > maxIDLen:
		return fmt.Errorf("exec: id must be 1-%d characters", maxIDLen)
	case m.TaskID == "":
		return errors.New("exec: task_id is required")
	case len(m.Cmd) == 0 || m.Cmd[0] == "":
		return errors.New("exec: cmd must name a program")
	case m.TimeoutSeconds < 0 || m.TimeoutSeconds > MaxExecTimeout.Seconds():
		return fmt.Errorf("exec: timeout_s must be 0-%.0f", MaxExecTimeout.Seconds())
	}
	return nil
}

// ExecResult is the outcome of an Exec. ExitCode is -1 when the command
// could not be run or did not finish; Error then says why.
type ExecResult struct {
	ID       string `json:"id"`
	TaskID   string `json:"task_id"`
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	// Truncated is set when stdout or stderr was cut at MaxExecOutput.
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}

// MessageType implements Message.
func (*ExecResult) MessageType() string { return TypeExecResult }

// Stats is a periodic report on one task.
type Stats struct {
	TaskID     string    `json:"task_id"`
	ExecutorID string    `json:"executor_id,omitempty"`
	Time       time.Time `json:"time"`
	// State is the task's Mesos state name, e.g. TASK_RUNNING.
	State   string `json:"state"`
	Healthy *bool  `json:"healthy,omitempty"`
	// CPUSeconds is the task's cumulative user+system CPU time.
	CPUSeconds float64 `json:"cpu_seconds"`
	// MemBytes is the task's resident memory.
	MemBytes uint64 `json:"mem_bytes"`
	// Workload holds figures from the workload's own stats provider, e.g.
	// {"role": "master", "master_repl_offset": "1234"}.
	Workload map[string]string `json:"workload,omitempty"`
	// Role is the role the executor believes its task holds (the launch's,
	// or the last SetRole's).
	Role string `json:"role,omitempty"`
	// Error says why some figures are missing.
	Error string `json:"error,omitempty"`
}

// MessageType implements Message.
func (*Stats) MessageType() string { return TypeStats }

// SetRole gives task TaskID its current role (master, slave or peer).
type SetRole struct {
	TaskID string `json:"task_id"`
	Role   string `json:"role"`
}

// MessageType implements Message.
func (*SetRole) MessageType() string { return TypeSetRole }

// Validate explains the first value that cannot work.
func (m *SetRole) Validate() error {
	switch {
	case m.TaskID == "":
		return errors.New("set_role: task_id is required")
	case m.Role != RoleMaster && m.Role != RoleSlave && m.Role != RolePeer:
		return fmt.Errorf("set_role: role must be %q, %q or %q, got %q", RoleMaster, RoleSlave, RolePeer, m.Role)
	}
	return nil
}

// ErrorReply answers a message the executor could not act on. ID echoes
// the request's id when it could be read.
type ErrorReply struct {
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
}

// MessageType implements Message.
func (*ErrorReply) MessageType() string { return TypeError }

// EncodeMessage encodes m as a JSON object with its "type" field first.
func EncodeMessage(m Message) ([]byte, error) {
	if m == nil {
		return nil, errors.New("encode message: nil message")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.MessageType(), err)
	}
	typ, _ := json.Marshal(m.MessageType())
	var out bytes.Buffer
	out.Grow(len(body) + len(typ) + 10)
	out.WriteString(`{"type":`)
	out.Write(typ)
	if len(body) > 2 { // body is "{...}"; "{}" adds nothing
		out.WriteByte(',')
		out.Write(body[1:])
	} else {
		out.WriteByte('}')
	}
	if out.Len() > MaxMessageSize {
		return nil, fmt.Errorf("encode %s message: %d bytes, more than the %d allowed", m.MessageType(), out.Len(), MaxMessageSize)
	}
	return out.Bytes(), nil
}

// DecodeMessage decodes a framework message strictly: a known "type", no
// unknown fields, no trailing data. An Exec is also validated.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("message is %d bytes, more than the %d allowed", len(b), MaxMessageSize)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, fmt.Errorf("message is not a JSON object: %w", err)
	}
	if fields == nil {
		return nil, errors.New("message is not a JSON object")
	}
	rawType, ok := fields["type"]
	if !ok {
		return nil, errors.New("message has no type")
	}
	var typ string
	if err := json.Unmarshal(rawType, &typ); err != nil {
		return nil, fmt.Errorf("message type must be a string: %w", err)
	}
	var m Message
	switch typ {
	case TypeExec:
		m = &Exec{}
	case TypeExecResult:
		m = &ExecResult{}
	case TypeStats:
		m = &Stats{}
	case TypeError:
		m = &ErrorReply{}
	case TypeSetRole:
		m = &SetRole{}
	default:
		return nil, fmt.Errorf("unknown message type %q", typ)
	}
	delete(fields, "type")
	rest, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("%s message: %w", typ, err)
	}
	if err := decodeStrict(rest, m); err != nil {
		return nil, fmt.Errorf("%s message: %w", typ, err)
	}
	switch m := m.(type) {
	case *Exec:
		if err := m.Validate(); err != nil {
			return nil, err
		}
	case *SetRole:
		if err := m.Validate(); err != nil {
			return nil, err
		}
	case *Stats:
		if len(m.Workload) == 0 {
			m.Workload = nil
		}
	}
	return m, nil
}

// MessageID returns the "id" field of a message that could not be decoded,
// so that an error reply can still name the request; "" if there is none.
func MessageID(b []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(b, &v) != nil || len(v.ID) > maxIDLen {
		return ""
	}
	return v.ID
}

// StatusData travels in TaskStatus.data of the executor's status updates:
// the detail a scheduler needs that Mesos' TaskStatus has no field for.
type StatusData struct {
	// Runtime is the runtime that ran the task ("docker" or "process").
	Runtime string `json:"runtime,omitempty"`
	// ExitCode is set once the task has exited; a signal N shows as 128+N.
	ExitCode *int `json:"exit_code,omitempty"`
	// StderrTail is the last lines the task wrote to stderr, on exit.
	StderrTail string `json:"stderr_tail,omitempty"`
	// Host is the address the task's ports are bound to.
	Host string `json:"host,omitempty"`
}

// EncodeStatusData encodes d for TaskStatus.data.
func EncodeStatusData(d StatusData) ([]byte, error) { return json.Marshal(d) }

// DecodeStatusData decodes TaskStatus.data written by EncodeStatusData.
func DecodeStatusData(b []byte) (*StatusData, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("status data is %d bytes, more than the %d allowed", len(b), MaxMessageSize)
	}
	var d StatusData
	if err := decodeStrict(b, &d); err != nil {
		return nil, fmt.Errorf("status data: %w", err)
	}
	return &d, nil
}
