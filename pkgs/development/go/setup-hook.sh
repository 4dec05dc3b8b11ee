# Setup hook of envy's `go`: cgo on, Go's target the package set's platform. `CC` (the
# compiler wrapper's) is what cgo compiles and links C with.
export CGO_ENABLED=1
export GOOS=linux
export GOARCH=@goarch@
# The host's Go runs on the build machine, in a cross shell too.
PATH=@out@/bin${PATH:+:$PATH}
