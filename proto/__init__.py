"""Wire and storage formats (protobuf) and their generated Python modules."""
