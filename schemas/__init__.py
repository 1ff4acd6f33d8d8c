"""JSON Schemas of chain and rehearsal files, generated from legion.dsl.model."""
