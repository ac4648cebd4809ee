# The two entry points of README.md. Both prepare the machine first (scripts/bootstrap).
.PHONY: demo test bench bootstrap

bootstrap:
	./scripts/bootstrap

demo: bootstrap
	.venv/bin/secretary demo

test:
	./scripts/bootstrap --test
	.venv/bin/python -m pytest -q -n 2 --dist loadfile

bench: bootstrap
	for b in bench/bench_*.py; do .venv/bin/python $$b || exit 1; done
