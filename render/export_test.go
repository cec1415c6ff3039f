package render

// For the tests of package render_test: what is left of a browser's
// process group, and what it takes.
var (
	GroupPIDs   = groupPIDs
	GroupMemory = groupMemory
)
