package main

import "fmt"

// Server answers requests on one port.
type Server struct {
	Port int
}

// Run starts the server and reports the port.
func (s *Server) Run() string {
	return fmt.Sprintf("listening on %d", s.Port)
}

// main runs a server on port 8080.
func main() {
	server := &Server{Port: 8080}
	fmt.Println(server.Run())
}
