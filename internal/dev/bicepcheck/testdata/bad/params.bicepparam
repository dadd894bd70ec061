using './template.bicep'

param region = 'eastus'
param colour = 'blue'
