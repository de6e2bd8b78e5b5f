"""sabre federated training core: data, model, FedAvg simulation, evaluation, command line."""
