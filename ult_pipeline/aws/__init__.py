"""ECR and ECS through boto3: the same code against AWS and against moto."""
