# syntax=docker/dockerfile:1
# Build: a static, pure-Go binary (the SQLite driver needs no cgo).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pushcert ./cmd/pushcert \
 && mkdir -p /out/data

# Run: distroless, no shell, as the nonroot user. Settings come from the
# environment (see README.md); no secret is baked into the image.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pushcert /usr/local/bin/pushcert
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV PUSHCERT_LISTEN_ADDR=:8080 \
    PUSHCERT_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
# The image has no shell or curl: the binary checks itself. "healthcheck"
# asks /healthz (the process serves); orchestrators that route traffic can
# probe readiness with "healthcheck -ready" (/readyz: database and provider).
# On SIGTERM pushcert drains in-flight requests for PUSHCERT_SHUTDOWN_TIMEOUT
# (20s): give the container longer than that to stop (docker run
# --stop-timeout 30, Compose stop_grace_period: 30s).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/pushcert", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pushcert"]
