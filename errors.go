package stateful

import "errors"

// Errors every part of the toolkit uses to say what went wrong with a
// request, so the REST API can map them to status codes with errors.Is
// whichever part produced them. Parts wrap them with context.
var (
	// ErrNotFound: no such instance (404).
	ErrNotFound = errors.New("not found")
	// ErrExists: an instance of that name already exists (409).
	ErrExists = errors.New("already exists")
	// ErrDeleting: the instance is being deleted and cannot change (409).
	ErrDeleting = errors.New("instance is being deleted")
	// ErrConflict: a concurrent change won; the request changed nothing and
	// may be retried (409).
	ErrConflict = errors.New("conflicting concurrent change")
	// ErrUnavailable: the scheduler cannot serve the request now, e.g. the
	// state store is unreachable or this scheduler is not the leader (503).
	ErrUnavailable = errors.New("unavailable")
)
