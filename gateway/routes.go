package gateway

import (
	"errors"

	"github.com/isthmus-iot/isthmus/config"
	"github.com/isthmus-iot/isthmus/mapping"
)

// CompileRoutes compiles cfg's routes into the Router the bridge uses. Its
// errors are config.Errors positioned in cfg's file, like Load's. It has no
// side effects: `isthmus check` calls it too.
func CompileRoutes(cfg *config.Config) (*mapping.Router, error) {
	routes := make([]mapping.RouteConfig, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = mapping.RouteConfig(r)
	}
	opts := mapping.Options{GatewayID: cfg.Gateway.ID, Unroutable: cfg.Unroutable}
	for _, u := range cfg.Uplinks {
		opts.Uplinks = append(opts.Uplinks, u.Name)
	}
	for _, q := range cfg.Queues {
		opts.Queues = append(opts.Queues, mapping.QueueConfig{Name: q.Name, Match: q.Match})
	}
	r, err := mapping.Compile(routes, opts)
	if err == nil {
		return r, nil
	}
	var ces mapping.CompileErrors
	if !errors.As(err, &ces) {
		return nil, err
	}
	var errs config.Errors
	for _, ce := range ces {
		errs = append(errs, cfg.At(ce.Path, ce.Msg))
	}
	return nil, errs
}
