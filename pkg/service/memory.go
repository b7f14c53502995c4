package service

import "runtime/debug"

// loadGCPercent is the GOGC used while a start-up load runs.
const loadGCPercent = 10

// LoadCompact runs a start-up load (allow-lists, GeoIP data, …) with the garbage collector
// running often, then returns the freed memory to the OS. Parsing such data allocates several
// times what the result keeps; with the default GOGC that transient heap would set the
// process's peak resident memory. It costs a little start-up CPU.
func LoadCompact[T any](load func() (T, error)) (T, error) {
	prev := debug.SetGCPercent(loadGCPercent)
	defer func() {
		debug.SetGCPercent(prev)
		debug.FreeOSMemory()
	}()
	return load()
}
