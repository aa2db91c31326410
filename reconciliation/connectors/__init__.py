"""HTTP clients of the outside services the app pulls data from."""
