GO ?= go
DATA ?= ./lemonvox-data

.PHONY: build run test vet fmtcheck bench fuzz clean

build:
	$(GO) build -o bin/lemonvoxd ./cmd/lemonvoxd
	$(GO) build -o bin/lemonvox ./cmd/lemonvox

run: build
	./bin/lemonvoxd -data $(DATA)

vet:
	$(GO) vet ./...

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: vet fmtcheck
	$(GO) test -race -shuffle=on -timeout 20m ./...

bench:
	@for d in bench/*/; do if [ -f $$d/main.go ]; then echo "== $$d"; $(GO) run ./$$d || exit 1; fi; done

clean:
	rm -rf bin
