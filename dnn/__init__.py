"""PyTorch models and their LRP explanations (see SPEC section 5); filled in by the DNN issue."""
