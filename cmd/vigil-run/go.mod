module github.com/vigilsec/vigil/cmd/vigil-run

go 1.26.8

require github.com/vigilsec/vigil/pkg v0.0.0

replace github.com/vigilsec/vigil/pkg => ../../pkg
