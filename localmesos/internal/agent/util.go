package agent

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"time"
)

// newUUID returns 16 random bytes shaped as a version 4 UUID, as Mesos'
// id::UUID::random() makes them.
func newUUID() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on Linux; a UUID we cannot make is a bug.
		panic(fmt.Sprintf("agent: reading random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// newUUIDString is a random UUID in its canonical text form (container IDs).
func newUUIDString() string { return formatUUID(newUUID()) }

func formatUUID(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// validUUID accepts what stout's UUID::fromBytes accepts: 16 bytes whose
// version nibble is one boost knows (1 to 5).
func validUUID(b []byte) bool {
	if len(b) != 16 {
		return false
	}
	v := b[6] >> 4
	return v >= 1 && v <= 5
}

// stoutDuration formats d the way Mesos' stout prints a Duration (5secs,
// 15mins, 500ms, 1.5secs): the largest unit below d, or the next smaller
// one when that gives a whole number. mesos-go's executor config parses
// only this format.
func stoutDuration(d time.Duration) string {
	if d < 0 {
		return "-" + stoutDuration(-d)
	}
	type unit struct {
		size time.Duration
		name string
	}
	units := []unit{
		{time.Nanosecond, "ns"},
		{time.Microsecond, "us"},
		{time.Millisecond, "ms"},
		{time.Second, "secs"},
		{time.Minute, "mins"},
		{time.Hour, "hrs"},
		{24 * time.Hour, "days"},
		{7 * 24 * time.Hour, "weeks"},
	}
	i := len(units) - 1
	for i > 0 && d < units[i].size {
		i--
	}
	if i > 0 && d%units[i].size != 0 && d%units[i-1].size == 0 {
		i--
	}
	v := float64(d) / float64(units[i].size)
	return strconv.FormatFloat(v, 'g', 15, 64) + units[i].name
}
