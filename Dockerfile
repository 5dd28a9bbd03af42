# Builds the single outpost binary; the same image runs every role.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/outpost ./cmd/outpost

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/outpost /usr/local/bin/outpost
ENV OUTPOST_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/outpost"]
CMD ["api"]
