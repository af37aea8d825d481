# Multi-stage, static, non-root. Build for another platform with
#   docker buildx build --platform linux/arm64,linux/arm/v7,linux/arm/v6 .
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS TARGETARCH TARGETVARIANT VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN GOARM="${TARGETVARIANT#v}" CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/isthmus ./cmd/isthmus \
 && mkdir -p /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/isthmus /isthmus
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
# MQTT, MQTT over TLS, WebSocket, admin (bind it to a private interface).
EXPOSE 1883 8883 8080 8081
ENTRYPOINT ["/isthmus"]
CMD ["run", "-c", "/etc/isthmus/isthmus.yaml"]
