package container

import (
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"regexp"
	"strconv"
	"strings"
)

// ShortIDLen is the length of the abbreviated container ID shown by `ps`.
const ShortIDLen = 12

// GenerateID returns a new random container ID: 64 lowercase hex digits.
// IDs whose short form consists only of decimal digits are rejected and
// drawn again, so that a short ID can never be mistaken for a number.
func GenerateID() string {
	b := make([]byte, 32)
	for {
		rand.Read(b) // never returns an error
		id := hex.EncodeToString(b)
		if !allDigits(id[:ShortIDLen]) {
			return id
		}
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ShortID returns the first 12 characters of id (or id itself if shorter).
func ShortID(id string) string {
	if len(id) > ShortIDLen {
		return id[:ShortIDLen]
	}
	return id
}

var idRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// validID reports whether id is a full container ID. Only such IDs are
// ever used as directory names under the store's root.
func validID(id string) bool { return idRe.MatchString(id) }

var nameRe = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidName checks a user supplied container name, with or without the
// leading "/". Names must match ^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$, which also
// rules out path separators and names such as "..".
func ValidName(name string) error {
	if !nameRe.MatchString(name) {
		return invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

// normalizeName strips the leading "/" that the Docker API puts in front of
// container names; berth stores names without it.
func normalizeName(name string) string { return strings.TrimPrefix(name, "/") }

var adjectives = [...]string{
	"agile", "amber", "ardent", "bold", "brave", "bright", "brisk", "calm",
	"candid", "cheerful", "clever", "cosmic", "curious", "daring", "deft",
	"eager", "earnest", "elated", "fearless", "fervent", "gentle", "glad",
	"graceful", "hardy", "humble", "jolly", "keen", "kind", "lively", "loyal",
	"lucid", "merry", "mighty", "modest", "nimble", "noble", "patient",
	"placid", "plucky", "proud", "quiet", "radiant", "serene", "sharp",
	"steady", "sunny", "swift", "tidy", "vivid", "witty", "zealous", "zesty",
}

var surnames = [...]string{
	"ampere", "archimedes", "avogadro", "babbage", "bohr", "boltzmann",
	"boole", "brunel", "carnot", "cavendish", "copernicus", "curie",
	"darwin", "dijkstra", "edison", "einstein", "euler", "faraday", "fermi",
	"feynman", "fourier", "galileo", "gauss", "hamilton", "heisenberg",
	"hertz", "hopper", "huygens", "joule", "kelvin", "kepler", "knuth",
	"lamarr", "laplace", "leibniz", "lovelace", "maxwell", "meitner",
	"mendel", "newton", "noether", "ohm", "pascal", "planck", "ramanujan",
	"riemann", "shannon", "tesla", "turing", "volta", "watt", "yalow",
}

// GenerateName returns a random "adjective_surname" name for which taken
// returns false. After a few collisions it appends a growing numeric
// suffix ("calm_turing7", "calm_turing42", ...), so it always terminates.
func GenerateName(taken func(string) bool) string {
	limit := 10
	for attempt := 0; ; attempt++ {
		name := adjectives[mrand.IntN(len(adjectives))] + "_" + surnames[mrand.IntN(len(surnames))]
		if attempt >= 5 {
			if attempt%10 == 0 && limit < 1<<30 {
				limit *= 10
			}
			name += strconv.Itoa(mrand.IntN(limit))
		}
		if taken == nil || !taken(name) {
			return name
		}
	}
}
