package executor

import "strings"

// shellCommand is the /bin/sh -c line that runs a task's command. A simple
// command (one program with its arguments) is run with `exec`, as bash does
// on its own and dash does not: the workload then replaces the shell and
// receives the stop signal itself. Otherwise the shell stays in front of it,
// ignores SIGTERM as PID 1 of a container, and the workload is only ever
// SIGKILLed at the end of the grace period, with no chance to shut down
// cleanly (flush its data, leave its cluster).
func shellCommand(command string) string {
	if !isSimpleCommand(command) {
		return command
	}
	return "exec " + command
}

// isSimpleCommand reports whether exec can prefix command without changing
// what it means: no lists, pipelines, subshells or compound commands, and no
// leading variable assignments (which exec would take for the program).
func isSimpleCommand(command string) bool {
	fields := strings.Fields(command)
	if len(fields) == 0 {
		return false
	}
	// Redirections such as 2>&1 are fine under exec; & elsewhere is not.
	bare := strings.NewReplacer(">&", "", "<&", "").Replace(command)
	if strings.ContainsAny(bare, ";&|()\n`") {
		return false
	}
	first := fields[0]
	if strings.Contains(first, "=") || strings.HasPrefix(first, "#") {
		return false
	}
	switch first {
	// Reserved words and builtins that are no program exec could run.
	case "exec", "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until",
		"do", "done", "in", "function", "{", "}", "!", "[[", "]]", "time", "select", "coproc",
		"exit", "return", "break", "continue", "cd", "export", "readonly", "set", "unset",
		"shift", "trap", "eval", ".", "source", "alias", "unalias", "umask", "ulimit", "wait",
		"read", "local", "type", "hash", "getopts", "jobs", "fg", "bg", "command", "builtin":
		return false
	}
	return true
}
