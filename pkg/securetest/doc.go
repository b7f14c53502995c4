// Package securetest holds integration tests (build tag "integration") that prove Vigil's secure
// transports on real servers: Kafka over SASL_SSL with SCRAM-SHA-512 and a private CA (the broker of
// scripts/kafka/kafka-secure.sh), Redis with AUTH and TLS (a throwaway redis-server per test), every
// service binary connecting that way, and no configured secret appearing in any log line or record.
//
// The package has no library code. Run it with the secure broker up:
//
//	bash scripts/kafka/kafka-secure.sh start
//	go test -tags integration -count=1 ./pkg/securetest
//	bash scripts/kafka/kafka-secure.sh stop
//
// VIGIL_TEST_SECURE_ENV names the broker's secure.env (default
// $HOME/.cache/vigil/kafka-secure/secure.env); the tests fail when it is missing or the broker does
// not answer.
package securetest
